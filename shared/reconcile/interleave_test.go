package reconcile

import (
	"context"
	"slices"
	"testing"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// TestStaleSnapshotNeverWrites: between a run's snapshot and its write another writer changes the
// database. The run plans from a read made under the lease, so the other writer's change survives.
// Before leases a run downgraded tls_mode enabled -> replica_ssl (auditing a wrong "before"), dropped
// a trusted certificate and deleted a Replica Of source entry added after its snapshot.
func TestStaleSnapshotNeverWrites(t *testing.T) {
	tests := []struct {
		name string
		// between changes the world after the snapshot and before the run's write.
		between func(t *testing.T, w *world)
		check   func(t *testing.T, w *world)
	}{
		{
			name: "source side: a certificate another run trusted after the snapshot stays",
			between: func(t *testing.T, w *world) {
				w.c["other"] = syncerCert(t, "other.example.com")
				db := &w.clusters["east"].dbs[0]
				db.AuthenticationSSLClientCerts = append(db.AuthenticationSSLClientCerts, reapi.ClientCert{ClientCert: w.c["other"].PEM})
			},
			check: func(t *testing.T, w *world) {
				if got := trustFPs(t, w.clusters["east"].db(1)); !slices.Contains(got, w.c["other"].FP) || !slices.Contains(got, w.c["westSyncer"].FP) {
					t.Errorf("east/1 trusts %v: want the certificate added after the snapshot and west's", got)
				}
			},
		},
		{
			name: "source side: tls_mode raised to enabled after the snapshot is never lowered",
			between: func(t *testing.T, w *world) {
				w.clusters["east"].dbs[0].TLSMode = reapi.TLSEnabled
			},
			check: func(t *testing.T, w *world) {
				if got := w.clusters["east"].db(1).TLSMode; got != reapi.TLSEnabled {
					t.Errorf("east/1 tls_mode %s, want enabled (raised after the snapshot)", got)
				}
				for _, e := range w.aud.events {
					if e.Step == StepSource && e.Before != nil && e.Before.TLSMode != "" && e.Before.TLSMode != string(reapi.TLSEnabled) {
						t.Errorf("%s %s event says before tls_mode %s: the before state must come from the read under the lease", e.Step, e.Outcome, e.Before.TLSMode)
					}
				}
			},
		},
		{
			name: "destination side: a Replica Of source entry added after the snapshot stays",
			between: func(t *testing.T, w *world) {
				db := &w.clusters["west"].dbs[0]
				db.ReplicaSources = append(db.ReplicaSources, reapi.ReplicaSource{UID: 9, URI: "redis://admin:other-pass@redis-13000.elsewhere.example.com:13000", Status: reapi.LinkSyncing})
			},
			check: func(t *testing.T, w *world) {
				db := w.clusters["west"].db(1)
				if !slices.ContainsFunc(db.ReplicaSources, func(rs reapi.ReplicaSource) bool { return rs.UID == 9 }) {
					t.Errorf("west/1 lost the replica source added after the snapshot: %d entries", len(db.ReplicaSources))
				}
				i := slices.IndexFunc(db.ReplicaSources, func(rs reapi.ReplicaSource) bool { return rs.UID == 1 })
				if i < 0 || !db.ReplicaSources[i].Encryption {
					t.Errorf("west/1 entry from east not secured: %+v", db.ReplicaSources)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			fleet := w.load(t) // the run's snapshot
			tt.between(t, w)
			if _, err := w.reconciler().ReconcileLink(context.Background(), fleet, westLink(), DefaultPolicy()); err != nil {
				t.Fatal(err)
			}
			tt.check(t, w)
		})
	}
}

// TestConcurrentRunsOnOneSource: runs for several destinations of one source database, each from
// its own snapshot taken before any of them wrote, all at once on shared leases: every
// destination's certificate ends up trusted.
func TestConcurrentRunsOnOneSource(t *testing.T) {
	w := newWorld(t, true)
	leases := ProcessLeases()
	links := []LinkRef{westLink(), {DestCluster: "north", DestDB: 1}}
	snapshots := make([]*Fleet, len(links))
	for i := range links {
		snapshots[i] = w.load(t)
	}
	errs := make(chan error, len(links))
	for i, ref := range links {
		go func() {
			r := New(Config{Registry: w.reg, Certs: w.certs, Auditor: w.aud, Now: testNow, Leases: leases})
			_, err := r.ReconcileLink(context.Background(), snapshots[i], ref, DefaultPolicy())
			errs <- err
		}()
	}
	for range links {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := trustFPs(t, w.clusters["east"].db(1))
	for _, n := range []string{"westSyncer", "northSyncer"} {
		if !slices.Contains(got, w.c[n].FP) {
			t.Errorf("east/1 does not trust %s after concurrent runs: %v", n, got)
		}
	}
}

// busyLeases never grants a lease: another run holds it for longer than this one may wait.
type busyLeases struct{}

func (busyLeases) Hold(context.Context, string, func(context.Context) error) error {
	return &BusyError{Resource: "db/east/1", Holder: "run-elsewhere"}
}

// TestBusyChangesNothing: a run that cannot get the lease writes nothing, and audits a failure with
// code busy naming the resource.
func TestBusyChangesNothing(t *testing.T) {
	w := newWorld(t, false)
	r := New(Config{Registry: w.reg, Certs: w.certs, Auditor: w.aud, Now: testNow, Leases: busyLeases{}})
	_, err := r.ReconcileLink(context.Background(), w.load(t), westLink(), DefaultPolicy())
	if !IsBusy(err) {
		t.Fatalf("ReconcileLink: %v, want a busy error", err)
	}
	if n := w.writes() + w.dryRuns(); n != 0 {
		t.Errorf("%d calls that write or validate were made without the lease", n)
	}
	var busy int
	for _, e := range w.aud.events {
		if e.Outcome == "started" {
			t.Errorf("a started event without the lease: %+v", e)
		}
		if e.Outcome == "failed" && e.Error != nil && e.Error.Code == "busy" {
			busy++
		}
	}
	if busy == 0 {
		t.Errorf("no failed event with code busy: %v", w.aud.outcomes())
	}
}

// TestSweepPrunesFromTheFreshRead: the sweep plans removals on its snapshot, but writes from the
// read under the lease: a certificate added in between (by an event run) is not removed with them.
func TestSweepPrunesFromTheFreshRead(t *testing.T) {
	w := newWorld(t, false)
	stale := syncerCert(t, "gone.example.com")
	w.certs.syncer["gone"] = []CertVersion{version("gone-s1", stale, StageCurrent)} // managed, needed by nobody
	w.clusters["gone"] = &fakeCluster{name: "gone", fqdn: "gone.example.com", trace: w.trace}
	w.clusters["east"].dbs[0].AuthenticationSSLClientCerts = []reapi.ClientCert{{ClientCert: stale.PEM}}
	fleet := w.load(t)
	other := syncerCert(t, "other.example.com")
	db := &w.clusters["east"].dbs[0]
	db.AuthenticationSSLClientCerts = append(db.AuthenticationSSLClientCerts, reapi.ClientCert{ClientCert: other.PEM})
	if _, err := w.reconciler().ReconcileLink(context.Background(), fleet, westLink(), sweepPolicy()); err != nil {
		t.Fatal(err)
	}
	got := trustFPs(t, w.clusters["east"].db(1))
	if slices.Contains(got, stale.FP) || !slices.Contains(got, other.FP) || !slices.Contains(got, w.c["westSyncer"].FP) {
		t.Errorf("east/1 trusts %v: want the stale managed certificate removed, the one added after the snapshot kept, west's trusted", got)
	}
}
