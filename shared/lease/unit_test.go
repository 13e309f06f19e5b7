package lease

import (
	"testing"
	"time"
)

func TestExpiry(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123).Add(456 * time.Microsecond)
	tests := []struct {
		name        string
		ttl, left   time.Duration
		hasDeadline bool
		slack       time.Duration
		want        time.Time
	}{
		{"no deadline: now plus TTL, whole ms", 30 * time.Second, 0, false, 2 * time.Second, time.UnixMilli(1_700_000_030_123)},
		{"deadline beyond TTL", 30 * time.Second, time.Minute, true, 2 * time.Second, time.UnixMilli(1_700_000_030_123)},
		{"deadline within TTL: deadline plus slack", 30 * time.Second, 5 * time.Second, true, 2 * time.Second, time.UnixMilli(1_700_000_007_123)},
		{"no slack", 30 * time.Second, 5 * time.Second, true, 0, time.UnixMilli(1_700_000_005_123)},
		{"deadline plus slack exactly the TTL", 30 * time.Second, 28 * time.Second, true, 2 * time.Second, time.UnixMilli(1_700_000_030_123)},
		{"deadline passed, slack left", 30 * time.Second, -time.Second, true, 2 * time.Second, time.UnixMilli(1_700_000_001_123)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := expiry(now, tc.ttl, tc.left, tc.hasDeadline, tc.slack); !got.Equal(tc.want) {
				t.Errorf("expiry = %v, want %v", got.UnixMilli(), tc.want.UnixMilli())
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	const base = 100 * time.Millisecond
	tests := []struct {
		name string
		try  int
		r    float64
		want time.Duration
	}{
		{"first try, least jitter", 0, 0, 50 * time.Millisecond},
		{"first try, most jitter", 0, 0.999999, 99_999_950},
		{"doubles", 1, 0, 100 * time.Millisecond},
		{"doubles again", 2, 0.5, 300 * time.Millisecond},
		{"capped at 8×base", 3, 0, 400 * time.Millisecond},
		{"stays capped", 4, 1, 800 * time.Millisecond},
		{"no overflow on many tries", 200, 0, 400 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := backoff(base, tc.try, tc.r); got != tc.want {
				t.Errorf("backoff(%s, %d, %v) = %s, want %s", base, tc.try, tc.r, got, tc.want)
			}
		})
	}
}

func TestResourceNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{DBResource("east", 1), "db/east/1"},
		{DBResource("west-2", 1234), "db/west-2/1234"},
		{CertResource("east", "syncer"), "cert/east/syncer"},
		{CertResource("west", "proxy"), "cert/west/proxy"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("resource name %q, want %q", tc.got, tc.want)
		}
	}
}
