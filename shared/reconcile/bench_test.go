package reconcile

import (
	"context"
	"fmt"
	"testing"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// convergedWorld is east with n source DBs, each replicated to its own west DB, all already secured.
func convergedWorld(t testing.TB, n int) *world {
	t.Helper()
	w := newWorld(t, false)
	east, west := w.clusters["east"], w.clusters["west"]
	east.dbs, west.dbs = nil, nil
	for i := 1; i <= n; i++ {
		port := 12000 + i
		east.dbs = append(east.dbs, reapi.DB{
			UID: i, Status: reapi.DBStatusActive, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled,
			AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: w.c["westSyncer"].PEM}},
			Endpoints:                    []reapi.Endpoint{{DNSName: fmt.Sprintf("redis-%d.east.example.com", port), Port: port}},
		})
		west.dbs = append(west.dbs, reapi.DB{
			UID: i, Status: reapi.DBStatusActive,
			ReplicaSources: []reapi.ReplicaSource{{UID: 1, Encryption: true, ServerCert: w.c["eastProxy"].PEM, Status: reapi.LinkInSync,
				URI: fmt.Sprintf("redis://admin:s3cr3t-pass@redis-%d.east.example.com:%d", port, port)}},
		})
	}
	return w
}

// TestConvergedSweepCost is the performance contract in calls, not time: a converged fleet of 1,000
// links costs two reads per cluster, a handful of certificate reads and no write.
func TestConvergedSweepCost(t *testing.T) {
	w := convergedWorld(t, 1000)
	res, err := w.reconciler().ReconcileCluster(context.Background(), w.load(t), "west", DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 1000 || res.Writes != 0 || res.Calls != 0 {
		t.Errorf("links %d, writes %d, calls after the snapshot %d; want 1000, 0, 0", len(res.Links), res.Writes, res.Calls)
	}
	for _, n := range []string{"east", "west"} {
		if c := w.clusters[n]; c.calls != 2 || c.writes+c.dryRuns != 0 {
			t.Errorf("%s: %d calls, %d writes, %d dry runs; want 2, 0, 0", n, c.calls, c.writes, c.dryRuns)
		}
	}
	// One syncer read per cluster (cached in the fleet) and one proxy read for the single source cluster.
	if w.certs.reads != 3 {
		t.Errorf("certificate reads = %d, want 3", w.certs.reads)
	}
	if len(w.aud.events) != 2000 {
		t.Errorf("events = %d, want one skipped per side", len(w.aud.events))
	}
}

func BenchmarkConvergedSweep1000(b *testing.B) {
	w := convergedWorld(b, 1000)
	ctx := context.Background()
	r := w.reconciler()
	for b.Loop() {
		w.aud.reset()
		f, err := LoadFleet(ctx, w.reg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReconcileCluster(ctx, f, "west", DefaultPolicy()); err != nil {
			b.Fatal(err)
		}
	}
}
