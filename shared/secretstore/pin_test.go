package secretstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

func TestPinnedFQDN(t *testing.T) {
	ctx := context.Background()
	s := secretstore.New(newClient(t), secretstore.Options{Prefix: uniquePrefix(t), CacheTTL: -1})
	ca := newKeyPair(t, "ca.example.com")
	reg := func(name, fqdn string) {
		t.Helper()
		if err := s.PutClusterAPI(ctx, secretstore.ClusterAPI{Name: name, URL: "https://" + name + ".example.com", Username: "u", Password: marker, CACert: ca.Cert, FQDN: fqdn}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	reg("east", "")
	reg("west", "West.Redis.Local.")
	reg("north", "north.redis.local")
	reg("evil", "")

	tests := []struct {
		name    string
		cluster string
		pin     string // PinFQDN before reading; "" none
		want    string
		wantErr error
	}{
		{name: "not pinned yet", cluster: "east", want: ""},
		{name: "the secret's fqdn field, normalised", cluster: "west", want: "west.redis.local"},
		{name: "a tag pins it", cluster: "east", pin: "east.redis.local", want: "east.redis.local"},
		{name: "field and tag that agree", cluster: "north", pin: "north.redis.local", want: "north.redis.local"},
		{name: "field and tag that disagree are refused", cluster: "west", pin: "east.redis.local", wantErr: secretstore.ErrInvalid},
		{name: "an unregistered cluster", cluster: "south", wantErr: secretstore.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pin != "" {
				if err := s.PinFQDN(ctx, tt.cluster, tt.pin); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.PinnedFQDN(ctx, tt.cluster)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("PinnedFQDN = %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("PinnedFQDN = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if err := s.PinFQDN(ctx, "evil", "not a host!"); !errors.Is(err, secretstore.ErrInvalid) {
		t.Errorf("pinning a non-host name: %v, want ErrInvalid", err)
	}
	// One ListSecrets call finds exact matches only: east.redis.local.evil is not east.redis.local.
	if err := s.PinFQDN(ctx, "evil", "east.redis.local.evil"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClustersByFQDN(ctx, []string{"east.redis.local", "north.redis.local", "nobody.redis.local", "redis.local"})
	if err != nil {
		t.Fatal(err)
	}
	// west was tagged east.redis.local above (the disagreeing case): two holders, which callers refuse.
	want := map[string][]string{"east.redis.local": {"east", "west"}, "north.redis.local": {"north"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClustersByFQDN (-want +got):\n%s", diff)
	}
}
