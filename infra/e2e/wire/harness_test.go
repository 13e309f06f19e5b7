package wire

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replica-tls/replica-tls/infra/dataplane/dptest"
)

// counter is the rotation harness: a writer INCRs a key on the source as fast as every 10 ms, and a
// reader reads it on the replica every 100 ms. The longest gap is the longest time between two reads
// that saw the replica's value advance: about 100 ms while replication flows, more while it stalls.
type counter struct {
	key    string
	src    *redis.Client
	dst    *redis.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	written     int64 // the last value INCR returned
	writeErrs   int
	lastWriteEr error
	seen        int64 // the last value read on the replica
	lastAdvance time.Time
	longestGap  time.Duration
	reads       int
}

const readEvery = 100 * time.Millisecond

func startCounter(t *testing.T, src, dst *redis.Client, key string) *counter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	c := &counter{key: key, src: src, dst: dst, cancel: cancel, lastAdvance: time.Now()}
	t.Cleanup(c.halt)
	c.wg.Add(2)
	go c.write(ctx)
	go c.read(ctx)
	// Both sides must be working before anything is measured.
	dptest.Eventually(t, 20*time.Second, "the counter replicates", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.seen > 0, "replica has " + strconv.FormatInt(c.seen, 10) + ", source " + strconv.FormatInt(c.written, 10)
	})
	return c
}

func (c *counter) write(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := c.src.Incr(ctx, c.key).Result()
		c.mu.Lock()
		if err != nil && ctx.Err() == nil {
			c.writeErrs++
			c.lastWriteEr = err
		} else if err == nil {
			c.written = n
		}
		c.mu.Unlock()
	}
}

func (c *counter) read(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(readEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v, err := c.dst.Get(ctx, c.key).Int64()
		if errors.Is(err, redis.Nil) {
			v, err = 0, nil
		}
		now := time.Now()
		c.mu.Lock()
		c.reads++
		if err == nil && v > c.seen {
			if c.seen > 0 { // the first advance only says the harness started
				c.longestGap = max(c.longestGap, now.Sub(c.lastAdvance))
			}
			c.seen, c.lastAdvance = v, now
		}
		c.mu.Unlock()
	}
}

// behind reports how far the replica is behind the source, as last seen.
func (c *counter) behind() (written, seen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written, c.seen
}

// finish stops the writer and the reader, waits for the replica to catch up (the final values must be
// equal) and returns the longest gap the reader saw.
func (c *counter) finish(t *testing.T) time.Duration {
	t.Helper()
	c.halt()
	ctx := t.Context()
	want, err := c.src.Get(ctx, c.key).Int64()
	if err != nil {
		t.Fatalf("read the final counter on the source: %v", err)
	}
	dptest.Eventually(t, 20*time.Second, "the replica's final value equals the source's", func() (bool, string) {
		got, err := c.dst.Get(ctx, c.key).Int64()
		return err == nil && got == want, "replica " + strconv.FormatInt(got, 10) + ", source " + strconv.FormatInt(want, 10)
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writeErrs > 0 {
		t.Errorf("%d writes on the source failed, the last: %v", c.writeErrs, c.lastWriteEr)
	}
	t.Logf("counter: %d writes, %d reads on the replica, final value %d", want, c.reads, want)
	return c.longestGap
}

// halt stops both goroutines; safe to call more than once.
func (c *counter) halt() {
	c.cancel()
	c.wg.Wait()
}
