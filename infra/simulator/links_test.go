package simulator

import (
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// linkEnv is the demo (west/1 replicates east/1) with handles and certificates for link tests.
type linkEnv struct {
	s                  *Sim
	east, west         *ClusterHandle
	clock              *clock
	eastProxy          string
	westSyncer         string
	other              certs.KeyPair // a certificate nobody uses
	westNearExpiry     certs.KeyPair // valid for one more day
	westClientOverride certs.KeyPair // for client_cert on the entry
}

func newLinkEnv(t *testing.T, opts Options) *linkEnv {
	t.Helper()
	e := &linkEnv{clock: newClock()}
	opts.Now = e.clock.Now
	e.s, e.east, e.west = startDemo(t, opts)
	e.eastProxy, _ = e.east.ProxyCert()
	e.westSyncer, _ = e.west.SyncerCert()
	e.other = freshCert(t, "other.redis.local")
	e.westNearExpiry = genCert(t, "west.redis.local", time.Now().Add(-364*24*time.Hour), 365*24*time.Hour)
	e.westClientOverride = freshCert(t, "west.redis.local")
	return e
}

func (e *linkEnv) source(t *testing.T, fn func(*DBConfig)) {
	t.Helper()
	if err := e.east.MutateDB(1, fn); err != nil {
		t.Fatal(err)
	}
}

func (e *linkEnv) entry(t *testing.T, fn func(*ReplicaSourceConfig)) {
	t.Helper()
	if err := e.west.MutateDB(1, func(cfg *DBConfig) { fn(&cfg.ReplicaSources[0]) }); err != nil {
		t.Fatal(err)
	}
}

// secure sets up the documented end state: source TLS for replication with client authentication
// trusting the destination's syncer, destination encrypting and trusting the source's proxy.
func (e *linkEnv) secure(t *testing.T, trusted ...string) {
	t.Helper()
	if trusted == nil {
		trusted = []string{e.westSyncer}
	}
	e.source(t, func(c *DBConfig) {
		c.TLSMode, c.EnforceClientAuthentication, c.AuthenticationSSLClientCerts = "replica_ssl", "enabled", trusted
	})
	e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.eastProxy })
}

func wantLink(t *testing.T, got tSource, status, errPart string) {
	t.Helper()
	if got.Status != status {
		t.Fatalf("link status %q (last_error %q), want %q", got.Status, got.LastError, status)
	}
	switch {
	case errPart == "" && got.LastError != "":
		t.Errorf("last_error %q, want none", got.LastError)
	case errPart != "" && !strings.Contains(got.LastError, errPart):
		t.Errorf("last_error %q, want it to mention %q", got.LastError, errPart)
	}
	if status != "out-of-sync" && got.Lag != 0 {
		t.Errorf("lag %d on a connected link", got.Lag)
	}
}

// TestLinkRules checks a fresh connection under every combination of settings that matters.
func TestLinkRules(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, e *linkEnv)
		wantStatus string
		wantErr    string
	}{
		{"plain source, plain link", func(*testing.T, *linkEnv) {}, "in-sync", ""},
		{"TLS for replication on the source, link without encryption", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
		}, "out-of-sync", "source requires TLS"},
		{"TLS for everything on the source, link without encryption", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "enabled" })
		}, "out-of-sync", "source requires TLS"},
		{"plain source, link with encryption", func(t *testing.T, e *linkEnv) {
			e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.eastProxy })
		}, "out-of-sync", "wrong version number"},
		{"TLS source without client auth, link trusting the proxy cert", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
			e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.eastProxy })
		}, "in-sync", ""},
		{"TLS for everything without client auth, link trusting the proxy cert", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "enabled" })
			e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.eastProxy })
		}, "in-sync", ""},
		{"link trusting the wrong server cert", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
			e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.other.CertPEM })
		}, "out-of-sync", "certificate verify failed"},
		{"client auth trusting the destination syncer", func(t *testing.T, e *linkEnv) {
			e.secure(t)
		}, "in-sync", ""},
		{"client auth trusting the syncer among others", func(t *testing.T, e *linkEnv) {
			e.secure(t, e.other.CertPEM, e.westSyncer)
		}, "in-sync", ""},
		{"client auth without the destination syncer", func(t *testing.T, e *linkEnv) {
			e.secure(t, e.other.CertPEM)
		}, "out-of-sync", "unknown ca"},
		{"client auth with an empty trust list", func(t *testing.T, e *linkEnv) {
			e.secure(t, []string{}...)
		}, "out-of-sync", "unknown ca"},
		{"client_cert override trusted, syncer not", func(t *testing.T, e *linkEnv) {
			e.secure(t, e.westClientOverride.CertPEM)
			e.entry(t, func(r *ReplicaSourceConfig) {
				r.ClientCert, r.ClientKey = e.westClientOverride.CertPEM, e.westClientOverride.KeyPEM
			})
		}, "in-sync", ""},
		{"client_cert override not trusted, syncer trusted", func(t *testing.T, e *linkEnv) {
			e.secure(t)
			e.entry(t, func(r *ReplicaSourceConfig) {
				r.ClientCert, r.ClientKey = e.westClientOverride.CertPEM, e.westClientOverride.KeyPEM
			})
		}, "out-of-sync", "unknown ca"},
		{"trusted syncer cert expired", func(t *testing.T, e *linkEnv) {
			if err := e.west.SetSyncerCert(e.westNearExpiry.CertPEM, e.westNearExpiry.KeyPEM); err != nil {
				t.Fatal(err)
			}
			e.secure(t, e.westNearExpiry.CertPEM)
			e.clock.Advance(2 * 24 * time.Hour)
		}, "out-of-sync", "certificate expired"},
		{"trusted syncer cert expired, outdated certs allowed", func(t *testing.T, e *linkEnv) {
			if err := e.west.SetSyncerCert(e.westNearExpiry.CertPEM, e.westNearExpiry.KeyPEM); err != nil {
				t.Fatal(err)
			}
			e.secure(t, e.westNearExpiry.CertPEM)
			e.source(t, func(c *DBConfig) { c.MTLSAllowOutdatedCerts = true })
			e.clock.Advance(2 * 24 * time.Hour)
		}, "in-sync", ""},
		{"source proxy cert expired", func(t *testing.T, e *linkEnv) {
			e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
			e.entry(t, func(r *ReplicaSourceConfig) { r.Encryption, r.ServerCert = true, e.eastProxy })
			e.clock.Advance(400 * 24 * time.Hour)
		}, "out-of-sync", "certificate has expired"},
		{"wrong password in the uri", func(t *testing.T, e *linkEnv) {
			e.entry(t, func(r *ReplicaSourceConfig) { r.URI = strings.Replace(r.URI, "orders-demo-password", "guess", 1) })
		}, "out-of-sync", "authentication failed"},
		{"uri naming no simulated endpoint", func(t *testing.T, e *linkEnv) {
			e.entry(t, func(r *ReplicaSourceConfig) {
				r.URI = strings.Replace(r.URI, "east.redis.local", "south.redis.local", 1)
			})
		}, "out-of-sync", "name or service not known"},
		{"uri with the endpoint host but another port", func(t *testing.T, e *linkEnv) {
			e.entry(t, func(r *ReplicaSourceConfig) { r.URI = strings.Replace(r.URI, ":12000", ":12001", 1) })
		}, "out-of-sync", "name or service not known"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLinkEnv(t, Options{})
			tt.setup(t, e)
			e.west.DropConnections() // a fresh connection under exactly these settings
			got := linkOf(t, e.west, 1)
			wantLink(t, got, tt.wantStatus, tt.wantErr)
			if strings.Contains(got.LastError, "orders-demo-password") {
				t.Errorf("last_error quotes the password: %q", got.LastError)
			}
		})
	}
}

func TestEstablishedLinkSurvivesSourceChanges(t *testing.T) {
	e := newLinkEnv(t, Options{})
	e.secure(t)
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "")

	// Through the API, as the client would: drop the destination's syncer from the trust list.
	c := adminClient(t, e.east)
	c.want(200, "PUT", "/v1/bdbs/1", map[string]any{
		"tls_mode":                        "enabled",
		"authentication_ssl_client_certs": []map[string]string{{"client_cert": e.other.CertPEM}},
	}, nil)
	e.east.CompleteActions()
	for range 3 {
		wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
	}

	e.east.DropConnections() // the source side restarts: the link must reconnect, and cannot
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "unknown ca")
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "unknown ca")

	// Trust restored by hand: the next read's retry succeeds, no restart needed.
	e.source(t, func(c *DBConfig) { c.AuthenticationSSLClientCerts = []string{e.westSyncer} })
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
}

func TestDestinationSyncerChange(t *testing.T) {
	tests := []struct {
		name       string
		trustNew   bool
		wantStatus string
		wantErr    string
	}{
		{"source does not trust the new syncer cert", false, "out-of-sync", "unknown ca"},
		{"source trusts the new syncer cert first", true, "in-sync", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newLinkEnv(t, Options{})
			next := freshCert(t, "west.redis.local")
			trusted := []string{e.westSyncer}
			if tt.trustNew {
				trusted = append(trusted, next.CertPEM)
			}
			e.secure(t, trusted...)
			wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
			before := e.west.Stats()

			// Through the API: PUT /v1/cluster/update_cert restarts the syncer.
			adminClient(t, e.west).want(200, "PUT", "/v1/cluster/update_cert",
				map[string]string{"name": "syncer", "certificate": next.CertPEM, "key": next.KeyPEM}, nil)
			after := e.west.Stats()
			if after.Connects+after.ConnectFailures != before.Connects+before.ConnectFailures+1 {
				t.Errorf("stats %+v -> %+v: want exactly one new connection attempt", before, after)
			}
			wantLink(t, linkOf(t, e.west, 1), tt.wantStatus, tt.wantErr)
			if !tt.trustNew {
				e.source(t, func(c *DBConfig) {
					c.AuthenticationSSLClientCerts = append(c.AuthenticationSSLClientCerts, next.CertPEM)
				})
				wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
			}
		})
	}
}

func TestSourceProxyChange(t *testing.T) {
	e := newLinkEnv(t, Options{})
	e.secure(t)
	next := freshCert(t, "east.redis.local")
	if err := e.east.SetProxyCert(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "") // established: untouched

	e.west.DropConnections()
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "certificate verify failed")
	before := e.west.Stats()

	// The destination's entry follows, keeping its uid: takes effect when the action completes.
	l := linkOf(t, e.west, 1)
	c := adminClient(t, e.west)
	c.want(200, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{
		{"uid": l.UID, "uri": l.URI, "encryption": true, "server_cert": next.CertPEM},
	}}, nil)
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "certificate verify failed")
	e.west.CompleteActions()
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
	if st := e.west.Stats(); st.LinkRestarts != before.LinkRestarts+1 || st.FullResyncs != 0 {
		t.Errorf("stats %+v -> %+v: want one more restart and no full resync", before, st)
	}
}

func TestStrictModeRechecksOnEveryRead(t *testing.T) {
	e := newLinkEnv(t, Options{ReconnectOnRead: true})
	e.secure(t)
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
	next := freshCert(t, "east.redis.local")
	if err := e.east.SetProxyCert(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	// Any read, even of the other cluster, re-checks every link.
	adminClient(t, e.east).want(200, "GET", "/v1/cluster", nil, nil)
	e.s.mu.Lock()
	connected := e.s.byName["west"].dbs[1].links[1].connected
	e.s.mu.Unlock()
	if connected {
		t.Error("link still connected after a read in strict mode")
	}
	var d tDB
	adminClient(t, e.west).want(200, "GET", "/v1/bdbs/1", nil, &d)
	wantLink(t, d.ReplicaSources[0], "out-of-sync", "certificate verify failed")
}

func TestLinkDownRetriesOnRead(t *testing.T) {
	e := newLinkEnv(t, Options{})
	e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
	e.west.DropConnections()
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "source requires TLS")
	e.source(t, func(c *DBConfig) { c.TLSMode = "disabled" })
	var list []tDB
	adminClient(t, e.west).want(200, "GET", "/v1/bdbs?fields=uid,replica_sources", nil, &list)
	wantLink(t, list[0].ReplicaSources[0], "in-sync", "")
}

func TestEntryChangeWaitsForTheAction(t *testing.T) {
	e := newLinkEnv(t, Options{})
	e.source(t, func(c *DBConfig) { c.TLSMode = "replica_ssl" })
	e.west.DropConnections()
	l := linkOf(t, e.west, 1)
	c := adminClient(t, e.west)
	c.want(200, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{
		{"uid": l.UID, "uri": l.URI, "encryption": true, "server_cert": e.eastProxy},
	}}, nil)
	wantLink(t, linkOf(t, e.west, 1), "out-of-sync", "source requires TLS")
	e.west.CompleteActions()
	wantLink(t, linkOf(t, e.west, 1), "in-sync", "")
}

func TestSyncDelay(t *testing.T) {
	t.Run("a long delay shows syncing", func(t *testing.T) {
		e := newLinkEnv(t, Options{SyncDelay: time.Hour})
		wantLink(t, linkOf(t, e.west, 1), "syncing", "")
		e.west.DropConnections()
		wantLink(t, linkOf(t, e.west, 1), "syncing", "")
	})
	t.Run("a short delay ends in-sync", func(t *testing.T) {
		e := newLinkEnv(t, Options{SyncDelay: 30 * time.Millisecond})
		waitFor(t, "in-sync", func() bool {
			l := linkOf(t, e.west, 1)
			if l.Status != "syncing" && l.Status != "in-sync" {
				t.Fatalf("status %q", l.Status)
			}
			return l.Status == "in-sync"
		})
	})
}
