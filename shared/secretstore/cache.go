package secretstore

import (
	"sync"
	"time"
)

type cacheOp byte

const (
	opStage    cacheOp = iota + 1 // value by stage; arg = stage
	opVersion                     // value by version id; arg = version id
	opVersions                    // staged versions of a secret
	opClusters                    // cluster names; secret = ""
)

type cacheKey struct {
	secret string
	op     cacheOp
	arg    string
}

type cacheEntry struct {
	val     any
	expires time.Time
}

// cache holds read-only values with an expiry. epoch grows on every drop so that a read which
// started before a write cannot store what it fetched after the write dropped the secret.
type cache struct {
	mu    sync.Mutex
	items map[cacheKey]cacheEntry
	epoch uint64
}

func (c *cache) get(k cacheKey, now time.Time) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(c.items, k)
		return nil, false
	}
	return e.val, true
}

func (c *cache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// set stores v unless something was dropped since epoch was read.
func (c *cache) set(k cacheKey, v any, now, expires time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if len(c.items) >= 512 { // bound growth in a long-lived container
		for key, e := range c.items {
			if !now.Before(e.expires) {
				delete(c.items, key)
			}
		}
	}
	c.items[k] = cacheEntry{val: v, expires: expires}
}

// drop forgets everything cached for the named secrets.
func (c *cache) drop(secrets ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for k := range c.items {
		for _, name := range secrets {
			if k.secret == name {
				delete(c.items, k)
				break
			}
		}
	}
}

func (c *cache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.items)
}

// cached returns the value for k, calling fetch on a miss. Errors are not cached.
func cached[T any](s *Store, k cacheKey, fetch func() (T, error)) (T, error) {
	if s.ttl <= 0 {
		return fetch()
	}
	if v, ok := s.cache.get(k, s.now()); ok {
		return v.(T), nil
	}
	epoch := s.cache.currentEpoch()
	v, err := fetch()
	if err != nil {
		return v, err
	}
	now := s.now()
	s.cache.set(k, v, now, now.Add(s.ttl), epoch)
	return v, nil
}
