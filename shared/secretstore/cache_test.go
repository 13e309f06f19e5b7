package secretstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// cacheFixture is a Store over a counting real client with an injected clock, and one syncer secret.
type cacheFixture struct {
	s      *secretstore.Store
	api    *countingAPI
	client *secretsmanager.Client
	clock  *fakeClock
	id     string // the syncer secret's only version
}

func newCacheFixture(t *testing.T, ttl time.Duration) cacheFixture {
	t.Helper()
	client := newClient(t)
	api := newCounting(client)
	clock := newFakeClock()
	s := secretstore.New(api, secretstore.Options{Prefix: uniquePrefix(t), CacheTTL: ttl, Now: clock.Now})
	kp := newKeyPair(t, "east.example.com")
	id, err := s.PutCert(context.Background(), "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert})
	if err != nil {
		t.Fatalf("PutCert: %v", err)
	}
	return cacheFixture{s: s, api: api, client: client, clock: clock, id: id}
}

// current reads AWSCURRENT through the Store and returns its version id.
func (f cacheFixture) current(t *testing.T) string {
	t.Helper()
	v, err := f.s.Cert(context.Background(), "east", secretstore.Syncer, "AWSCURRENT")
	if err != nil {
		t.Fatalf("Cert: %v", err)
	}
	return v.VersionID
}

func TestCacheExpiry(t *testing.T) {
	cases := []struct {
		name      string
		ttl       time.Duration
		stillHit  time.Duration // advance this much: still cached
		nowExpire time.Duration // then this much more: fetched again
	}{
		{"default TTL is 30s", 0, 29 * time.Second, time.Second},
		{"custom TTL", 5 * time.Minute, 4*time.Minute + 59*time.Second, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, tc.ttl)
			f.current(t)
			f.current(t)
			if n := f.api.n("GetSecretValue"); n != 1 {
				t.Fatalf("GetSecretValue calls after two reads = %d, want 1", n)
			}
			f.clock.Advance(tc.stillHit)
			f.current(t)
			if n := f.api.n("GetSecretValue"); n != 1 {
				t.Fatalf("GetSecretValue calls before the TTL = %d, want 1", n)
			}
			f.clock.Advance(tc.nowExpire)
			f.current(t)
			if n := f.api.n("GetSecretValue"); n != 2 {
				t.Fatalf("GetSecretValue calls once the TTL passed = %d, want 2", n)
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newCacheFixture(t, -1)
	for range 3 {
		f.current(t)
	}
	if _, err := f.s.CertVersions(context.Background(), "east", secretstore.Syncer); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.CertVersions(context.Background(), "east", secretstore.Syncer); err != nil {
		t.Fatal(err)
	}
	if n := f.api.n("GetSecretValue"); n != 5 {
		t.Errorf("GetSecretValue calls = %d, want 5 with the cache disabled", n)
	}
	if n := f.api.n("ListSecretVersionIds"); n != 2 {
		t.Errorf("ListSecretVersionIds calls = %d, want 2 with the cache disabled", n)
	}
}

func TestCacheVersionList(t *testing.T) {
	ctx := context.Background()
	f := newCacheFixture(t, 0)
	for range 2 {
		vs, err := f.s.CertVersions(ctx, "east", secretstore.Syncer)
		if err != nil || len(vs) != 1 {
			t.Fatalf("CertVersions = %d versions, %v; want 1", len(vs), err)
		}
	}
	if n, m := f.api.n("ListSecretVersionIds"), f.api.n("GetSecretValue"); n != 1 || m != 1 {
		t.Errorf("after two CertVersions: ListSecretVersionIds %d, GetSecretValue %d calls; want 1, 1", n, m)
	}
	// A version's value is cached by id and shared with CertWithKey-style reads by version.
	f.clock.Advance(31 * time.Second)
	if _, err := f.s.CertVersions(ctx, "east", secretstore.Syncer); err != nil {
		t.Fatal(err)
	}
	if n := f.api.n("ListSecretVersionIds"); n != 2 {
		t.Errorf("ListSecretVersionIds calls after the TTL = %d, want 2", n)
	}
}

func TestCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(t *testing.T, f cacheFixture) (wantCurrent string)
	}{
		{"PutCert drops the secret", func(t *testing.T, f cacheFixture) string {
			kp := newKeyPair(t, "east.example.com")
			id, err := f.s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}},
		{"MoveStage drops the secret", func(t *testing.T, f cacheFixture) string {
			kp := newKeyPair(t, "east.example.com")
			id, err := f.s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert, Stages: []string{"AWSPENDING"}})
			if err != nil {
				t.Fatal(err)
			}
			f.current(t) // cache the old current again
			if err := f.s.MoveStage(ctx, f.s.SecretName("east", secretstore.Syncer), "AWSCURRENT", id, f.id); err != nil {
				t.Fatal(err)
			}
			return id
		}},
		{"Invalidate drops everything", func(t *testing.T, f cacheFixture) string {
			id := putRaw(t, f)
			f.s.Invalidate()
			return id
		}},
		{"a write elsewhere is seen once the TTL passed", func(t *testing.T, f cacheFixture) string {
			id := putRaw(t, f)
			if got := f.current(t); got != f.id {
				t.Errorf("right after a write elsewhere, Cert = %s, want the cached %s", got, f.id)
			}
			f.clock.Advance(30 * time.Second)
			return id
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t, 0)
			if got := f.current(t); got != f.id {
				t.Fatalf("Cert = %s, want %s", got, f.id)
			}
			want := tc.change(t, f)
			if got := f.current(t); got != want {
				t.Errorf("Cert(AWSCURRENT) = %s, want the new %s", got, want)
			}
			vs, err := f.s.CertVersions(ctx, "east", secretstore.Syncer)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 2 || vs[0].VersionID != want || !vs[0].Has("AWSCURRENT") {
				t.Errorf("CertVersions = %+v, want 2 with %s current first", summarize(vs), want)
			}
		})
	}
}

// putRaw writes a new current version without the Store, as another Lambda would.
func putRaw(t *testing.T, f cacheFixture) string {
	t.Helper()
	kp := newKeyPair(t, "east.example.com")
	out, err := f.client.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId:     aws.String(f.s.SecretName("east", secretstore.Syncer)),
		SecretString: aws.String(`{"certificate": ` + quote(t, kp.Cert) + `}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func TestCacheConcurrentReaders(t *testing.T) {
	f := newCacheFixture(t, 0)
	var wg sync.WaitGroup
	got := make([]string, 16)
	errs := make([]error, 16)
	for i := range got {
		wg.Go(func() {
			v, err := f.s.Cert(context.Background(), "east", secretstore.Syncer, "AWSCURRENT")
			got[i], errs[i] = v.VersionID, err
			if i%4 == 0 {
				f.s.Invalidate()
			}
		})
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != f.id {
			t.Errorf("reader %d: %q, %v; want %q", i, got[i], errs[i], f.id)
		}
	}
	if n := f.api.n("GetSecretValue"); n < 1 || n > 16 {
		t.Errorf("GetSecretValue calls = %d, want 1..16", n)
	}
}

// BenchmarkCertCached measures a cache hit, what a warm Lambda pays per read.
func BenchmarkCertCached(b *testing.B) {
	client := newClient(b)
	s := secretstore.New(client, secretstore.Options{Prefix: uniquePrefix(b)})
	kp := newKeyPair(b, "east.example.com")
	ctx := context.Background()
	if _, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSCURRENT"); err != nil {
			b.Fatal(err)
		}
	}
}
