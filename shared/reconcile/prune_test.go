package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const grace = 7 * 24 * time.Hour

func TestPrunable(t *testing.T) {
	rotated := testNow().Add(-10 * 24 * time.Hour) // the AWSCURRENT version's creation
	old, cur, pending := syncerCert(t, "west.example.com"), syncerCert(t, "west.example.com"), syncerCert(t, "west.example.com")
	versions := func(created time.Time) []CertVersion {
		return []CertVersion{
			{VersionID: "v2", Stages: []string{StageCurrent}, Certificate: cur.PEM, Created: created},
			{VersionID: "v1", Stages: []string{StagePrevious}, Certificate: old.PEM, Created: created.AddDate(-1, 0, 0)},
		}
	}
	tests := []struct {
		name      string
		now       time.Time
		after     time.Duration
		syncer    []CertVersion
		presented []string
		complete  bool
		want      []string
	}{
		{name: "after the grace period, presented by nobody, every cluster known: pruned",
			now: testNow(), after: grace, syncer: versions(rotated), complete: true, want: []string{old.FP}},
		{name: "one second before the grace period ends: kept",
			now: rotated.Add(grace - time.Second), after: grace, syncer: versions(rotated), complete: true},
		{name: "exactly at the end of the grace period: pruned",
			now: rotated.Add(grace), after: grace, syncer: versions(rotated), complete: true, want: []string{old.FP}},
		{name: "still presented by a cluster: kept whatever the time",
			now: testNow().AddDate(1, 0, 0), after: grace, syncer: versions(rotated), presented: []string{old.FP}, complete: true},
		{name: "a cluster of the fleet is unknown: kept",
			now: testNow(), after: grace, syncer: versions(rotated), complete: false},
		{name: "grace period 0 means never prune",
			now: testNow().AddDate(5, 0, 0), after: 0, syncer: versions(rotated), complete: true},
		{name: "no creation time for AWSCURRENT: the grace period cannot be measured, kept",
			now: testNow(), after: grace, syncer: versions(time.Time{}), complete: true},
		{name: "AWSPREVIOUS holding the same certificate as AWSCURRENT is never pruned",
			now: testNow(), after: grace, complete: true, syncer: []CertVersion{
				{VersionID: "v2", Stages: []string{StageCurrent}, Certificate: cur.PEM, Created: rotated},
				{VersionID: "v1", Stages: []string{StagePrevious}, Certificate: cur.PEM, Created: rotated},
			}},
		{name: "AWSPREVIOUS that is the pending certificate of a new rotation is kept",
			now: testNow(), after: grace, complete: true, syncer: []CertVersion{
				{VersionID: "v3", Stages: []string{StagePending}, Certificate: pending.PEM, Created: testNow()},
				{VersionID: "v2", Stages: []string{StageCurrent}, Certificate: cur.PEM, Created: rotated},
				{VersionID: "v1", Stages: []string{StagePrevious}, Certificate: pending.PEM, Created: rotated},
			}},
		{name: "a new rotation in progress does not hold back pruning the older certificate",
			now: testNow(), after: grace, complete: true, want: []string{old.FP}, syncer: append([]CertVersion{
				{VersionID: "v3", Stages: []string{StagePending}, Certificate: pending.PEM, Created: testNow()},
			}, versions(rotated)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := 0
			presented := map[string]bool{}
			for _, fp := range tt.presented {
				presented[fp] = true
			}
			got := prunable(parseCache{}, pruneInput{
				Destinations: []DestCluster{{Name: "west", Syncer: tt.syncer}},
				Presented:    presented,
				Complete:     func() bool { asked++; return tt.complete },
				Now:          tt.now,
				After:        tt.after,
			})
			var fps []string
			for fp := range got {
				fps = append(fps, fp)
			}
			slices.Sort(fps)
			if diff := cmp.Diff(tt.want, fps); diff != "" {
				t.Errorf("prunable (-want +got):\n%s", diff)
			}
			if asked > 1 {
				t.Errorf("fleet completeness asked %d times, want at most once", asked)
			}
			if len(tt.want) == 0 && tt.complete && asked > 0 {
				t.Errorf("fleet completeness asked although nothing was a candidate")
			}
		})
	}
}

// pruneWorld is the demo world after a rotation of west's syncer certificate: east/1 trusts the old
// (AWSPREVIOUS) and the new (AWSCURRENT) certificate, and west presents the new one.
func pruneWorld(t *testing.T, withNorth bool) (*world, testCert, testCert, time.Time) {
	t.Helper()
	w := newWorld(t, withNorth)
	rotated := testNow()
	oldCert, newCert := w.c["westSyncer"], syncerCert(t, "west.example.com")
	w.certs.syncer["west"] = []CertVersion{
		{VersionID: "west-s2", Stages: []string{StageCurrent}, Certificate: newCert.PEM, Created: rotated},
		{VersionID: "west-s1", Stages: []string{StagePrevious}, Certificate: oldCert.PEM, Created: rotated.AddDate(-1, 0, 0)},
	}
	w.clusters["west"].syncer = newCert.PEM
	return w, oldCert, newCert, rotated
}

func (w *world) pruningReconciler(now time.Time) *Reconciler {
	return New(Config{Registry: w.reg, Certs: w.certs, Auditor: w.aud, Now: func() time.Time { return now }, PruneAfter: grace})
}

func TestPruneAfterGracePeriodOnlyWhenNobodyPresents(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		after     time.Duration // since the rotation
		setup     func(w *world, old testCert)
		wantTrust func(old, cur testCert) []string
		wantStop  bool
		// afterSnapshot: setup happens after the fleet was read (the snapshot does not see it)
		afterSnapshot bool
	}{
		{name: "within the grace period both stay trusted", after: grace - time.Hour,
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
		{name: "after the grace period the old certificate leaves the trust list", after: grace + time.Hour, wantStop: true,
			wantTrust: func(old, cur testCert) []string { return []string{cur.FP} }},
		{name: "after the grace period but the destination still presents it: kept", after: 30 * 24 * time.Hour,
			setup:     func(w *world, old testCert) { w.clusters["west"].syncer = old.PEM },
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
		{name: "after the grace period but another cluster presents it: kept", after: 30 * 24 * time.Hour,
			setup:     func(w *world, old testCert) { w.clusters["east"].syncer = old.PEM },
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
		{name: "after the grace period but a replica source presents it as its own client certificate: kept", after: 30 * 24 * time.Hour,
			setup: func(w *world, old testCert) {
				w.clusters["west"].dbs[0].ReplicaSources[0].ClientCert = old.PEM
			},
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
		{name: "after the grace period but a registered cluster could not be read: kept", after: 30 * 24 * time.Hour,
			setup:     func(w *world, _ testCert) { w.clusters["north"].failGetCluster = errors.New("connection refused") },
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
		{name: "after the grace period but a cluster was registered after the snapshot: kept", after: 30 * 24 * time.Hour, afterSnapshot: true,
			setup: func(w *world, _ testCert) {
				w.clusters["south"] = &fakeCluster{name: "south", fqdn: "south.example.com"}
			},
			wantTrust: func(old, cur testCert) []string { return []string{old.FP, cur.FP} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, old, cur, rotated := pruneWorld(t, true)
			// Converge at rotation time: east/1 trusts both certificates (and north's).
			if _, err := w.pruningReconciler(rotated).ReconcileCluster(ctx, w.load(t), "east", DefaultPolicy()); err != nil {
				t.Fatal(err)
			}
			if got := trustFPs(t, w.clusters["east"].db(1)); !slices.Contains(got, old.FP) || !slices.Contains(got, cur.FP) {
				t.Fatalf("after the rotation east/1 must trust both certificates, trusts %v", got)
			}
			fleet := w.load(t)
			if tt.setup != nil {
				tt.setup(w, old)
				if !tt.afterSnapshot {
					fleet = w.load(t)
				}
			}
			w.aud.reset()
			_, err := w.pruningReconciler(rotated.Add(tt.after)).ReconcileLink(ctx, fleet, westLink(), sweepPolicy())
			if err != nil && !strings.Contains(err.Error(), "north") {
				t.Fatal(err)
			}
			want := append(tt.wantTrust(old, cur), w.c["northSyncer"].FP)
			got := trustFPs(t, w.clusters["east"].db(1))
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("east/1 trust list (-want +got):\n%s", diff)
			}
			stopped := false
			for _, e := range w.aud.events {
				for _, c := range e.Changes {
					if strings.Contains(c, "stop trusting sha256:"+old.FP) {
						stopped = true
					}
				}
			}
			if stopped != tt.wantStop {
				t.Errorf("an audited change stops trusting the old certificate: %v, want %v (events %v)", stopped, tt.wantStop, w.aud.outcomes())
			}
		})
	}
}

func TestPruneNeverWithoutGracePeriod(t *testing.T) {
	w, old, _, rotated := pruneWorld(t, false)
	ctx := context.Background()
	r := New(Config{Registry: w.reg, Certs: w.certs, Auditor: w.aud, Now: func() time.Time { return rotated.AddDate(0, 6, 0) }})
	for range 2 {
		if _, err := r.ReconcileLink(ctx, w.load(t), westLink(), DefaultPolicy()); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(trustFPs(t, w.clusters["east"].db(1)), old.FP) {
		t.Error("PruneAfter 0 must never prune, but the old certificate left the trust list")
	}
}
