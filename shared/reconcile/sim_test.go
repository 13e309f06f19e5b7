package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/cluster"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// The production client is what the reconciler is written against.
var _ ClusterAPI = (*cluster.Client)(nil)

// simRegistry gives real API clients, pinned to each simulated cluster's own API certificate.
type simRegistry struct {
	clients map[string]*cluster.Client
}

func (r simRegistry) ClusterNames(context.Context) ([]string, error) {
	var out []string
	for n := range r.clients {
		out = append(out, n)
	}
	return out, nil
}

func (r simRegistry) Client(_ context.Context, name string) (ClusterAPI, error) {
	c, ok := r.clients[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrUnknownCluster)
	}
	return c, nil
}

// simCerts stands in for Secrets Manager: it holds what each simulated cluster presents, as the
// registration step records it.
type simCerts struct {
	sim *simulator.Sim
}

func (s simCerts) SyncerVersions(_ context.Context, name string) ([]CertVersion, error) {
	h := s.sim.Cluster(name)
	if h == nil {
		return nil, ErrNoCertificate
	}
	cert, _ := h.SyncerCert()
	return []CertVersion{{VersionID: name + "-syncer-1", Stages: []string{StageCurrent}, Certificate: cert}}, nil
}

func (s simCerts) ProxyCurrent(_ context.Context, name string) (CertVersion, error) {
	h := s.sim.Cluster(name)
	if h == nil {
		return CertVersion{}, ErrNoCertificate
	}
	cert, _ := h.ProxyCert()
	return CertVersion{VersionID: name + "-proxy-1", Stages: []string{StageCurrent}, Certificate: cert}, nil
}

func (simCerts) ClientCerts(context.Context, string, int) ([]string, error) { return nil, nil }

// startSim runs the demo topology on loopback ports until the test ends.
func startSim(t *testing.T) (*simulator.Sim, simRegistry) {
	t.Helper()
	topo, err := simulator.DemoTopology()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.New(topo, simulator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		if err := sim.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reg := simRegistry{clients: map[string]*cluster.Client{}}
	for _, info := range sim.Clusters() {
		c, err := cluster.New(cluster.Config{
			Name: info.Name, URL: info.URL, Username: info.AdminUser, Password: info.AdminPassword,
			CACert: info.APICertPEM, Retry: cluster.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		reg.clients[info.Name] = c
	}
	return sim, reg
}

func TestSimulatorDemoTopology(t *testing.T) {
	tests := []struct {
		name     string
		pol      Policy
		wantMode reapi.TLSMode
	}{
		{name: "scope replica secures east/1 -> west/1 and the link stays in sync", pol: DefaultPolicy(), wantMode: reapi.TLSReplicaSSL},
		{name: "scope all secures east/1 -> west/1 and the link stays in sync", pol: Policy{Scope: ScopeAll, ClientAuth: true}, wantMode: reapi.TLSEnabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			sim, reg := startSim(t)
			aud := newAuditor(t)
			r := New(Config{Registry: reg, Certs: simCerts{sim}, Auditor: aud, Poll: 10 * time.Millisecond})

			fleet, err := LoadFleet(ctx, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(fleet.Errors) > 0 {
				t.Fatalf("fleet errors: %v", fleet.Errors)
			}
			res, err := r.ReconcileLink(ctx, fleet, LinkRef{DestCluster: "west", DestDB: 1}, tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			if res.Writes != 2 {
				t.Errorf("writes = %d, want 2 (source, destination)", res.Writes)
			}

			east, err := reg.clients["east"].GetDB(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			syncer, _ := sim.Cluster("west").SyncerCert()
			if east.TLSMode != tt.wantMode || east.EnforceClientAuthentication != reapi.Enabled ||
				len(east.AuthenticationSSLClientCerts) != 1 || !certs.SameCert(east.AuthenticationSSLClientCerts[0].ClientCert, syncer) {
				t.Errorf("east/1: tls_mode %s, enforce %s, %d trusted certificates", east.TLSMode, east.EnforceClientAuthentication, len(east.AuthenticationSSLClientCerts))
			}
			entry := waitInSync(ctx, t, reg.clients["west"])
			proxy, _ := sim.Cluster("east").ProxyCert()
			if !entry.Encryption || !certs.SameCert(entry.ServerCert, proxy) || entry.UID != 1 {
				t.Errorf("west/1 entry: uid %d encryption %v", entry.UID, entry.Encryption)
			}
			if st := sim.Cluster("west").Stats(); st.FullResyncs != 0 {
				t.Errorf("the destination entry was recreated (%d full resyncs): its uid was not sent back", st.FullResyncs)
			}
			for _, e := range aud.events {
				body, _ := json.Marshal(e)
				assertNoSecret(t, string(body))
				for _, info := range sim.Clusters() {
					if strings.Contains(string(body), info.AdminPassword) {
						t.Errorf("event holds the %s admin password", info.Name)
					}
				}
			}

			// Idempotent: a second run over a fresh snapshot reads each cluster twice and writes nothing.
			for _, n := range []string{"east", "west"} {
				sim.Cluster(n).ResetCalls()
			}
			aud.reset()
			fleet, err = LoadFleet(ctx, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err = r.ReconcileLink(ctx, fleet, LinkRef{DestCluster: "west", DestDB: 1}, tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"east", "west"} {
				calls := sim.Cluster(n).Calls()
				if calls["PUT /v1/bdbs/{uid}"] != 0 || sim.Cluster(n).TotalCalls() != 2 {
					t.Errorf("%s: second run calls %v, want only the two snapshot reads", n, calls)
				}
			}
			for _, e := range aud.events {
				if e.Outcome != audit.Skipped {
					t.Errorf("second run event %s %s, want skipped", e.Step, e.Outcome)
				}
			}
			if len(aud.events) != 2 || res.Links[0].Status != reapi.LinkInSync {
				t.Errorf("second run: %d events, link status %q", len(aud.events), res.Links[0].Status)
			}
		})
	}
}

// waitInSync reads west/1 until its link reports in-sync, or fails when ctx ends. It asserts a state,
// not a speed.
func waitInSync(ctx context.Context, t *testing.T, c *cluster.Client) reapi.ReplicaSource {
	t.Helper()
	for {
		db, err := c.GetDB(ctx, 1, "uid", "replica_sources")
		if err != nil {
			t.Fatal(err)
		}
		if len(db.ReplicaSources) != 1 {
			t.Fatalf("west/1 has %d replica sources, want 1", len(db.ReplicaSources))
		}
		e := db.ReplicaSources[0]
		if e.Status == reapi.LinkInSync && e.LastError == "" {
			return e
		}
		select {
		case <-ctx.Done():
			t.Fatalf("west/1 link never in sync: status %q, last error %q", e.Status, redact(e.LastError))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
