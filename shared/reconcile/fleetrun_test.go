package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// pairsWorld is east with n source DBs, each replicated to its own west DB, none of them secured.
func pairsWorld(t testing.TB, n int) *world {
	t.Helper()
	w := newWorld(t, false)
	east, west := w.clusters["east"], w.clusters["west"]
	east.dbs, west.dbs = nil, nil
	for i := 1; i <= n; i++ {
		port := 12000 + i
		east.dbs = append(east.dbs, reapi.DB{
			UID: i, Status: reapi.DBStatusActive, TLSMode: reapi.TLSDisabled,
			Endpoints: []reapi.Endpoint{{DNSName: fmt.Sprintf("redis-%d.east.example.com", port), Port: port}},
		})
		west.dbs = append(west.dbs, reapi.DB{
			UID: i, Status: reapi.DBStatusActive,
			ReplicaSources: []reapi.ReplicaSource{{UID: 1, Status: reapi.LinkInSync,
				URI: fmt.Sprintf("redis://admin:s3cr3t-pass@redis-%d.east.example.com:%d", port, port)}},
		})
	}
	return w
}

// gatedRegistry hands out clients whose UpdateDB first calls before: a test's hook to hold a group
// of links at a known point.
type gatedRegistry struct {
	Registry
	before func(ctx context.Context, cluster string, dryRun bool)
}

func (g gatedRegistry) Client(ctx context.Context, name string) (ClusterAPI, error) {
	c, err := g.Registry.Client(ctx, name)
	if err != nil {
		return nil, err
	}
	return gatedAPI{ClusterAPI: c, before: g.before}, nil
}

type gatedAPI struct {
	ClusterAPI
	before func(ctx context.Context, cluster string, dryRun bool)
}

func (a gatedAPI) UpdateDB(ctx context.Context, uid int, upd reapi.DBUpdate, dryRun bool) (reapi.DB, error) {
	a.before(ctx, a.Name(), dryRun)
	return a.ClusterAPI.UpdateDB(ctx, uid, upd, dryRun)
}

func TestGroupLinks(t *testing.T) {
	end := func(c string, db int) LinkEnd { return LinkEnd{c, db} }
	link := func(dest, src LinkEnd) Link { return Link{Dest: dest, Source: src} }
	tests := []struct {
		name  string
		links []Link
		want  [][]int
	}{
		{
			name:  "independent links are groups of their own",
			links: []Link{link(end("west", 1), end("east", 1)), link(end("west", 2), end("east", 2))},
			want:  [][]int{{0}, {1}},
		},
		{
			name: "links sharing a source form one group, in link order",
			links: []Link{link(end("west", 1), end("east", 1)), link(end("west", 2), end("east", 2)),
				link(end("north", 1), end("east", 1))},
			want: [][]int{{0, 2}, {1}},
		},
		{
			name:  "links sharing a destination (two sources) form one group",
			links: []Link{link(end("west", 1), end("east", 1)), link(end("west", 1), end("north", 1))},
			want:  [][]int{{0, 1}},
		},
		{
			name: "a chain through a database that is both destination and source is one group",
			links: []Link{link(end("west", 1), end("east", 1)), link(end("north", 1), end("west", 1)),
				link(end("south", 1), end("north", 9))},
			want: [][]int{{0, 1}, {2}},
		},
		{
			name:  "an unresolved link is grouped by its destination only",
			links: []Link{{Dest: end("west", 1), Err: errors.New("unresolved")}, link(end("west", 2), end("east", 1))},
			want:  [][]int{{0}, {1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, groupLinks(tt.links)); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReconcileFleetConvergesEveryLinkAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	w := pairsWorld(t, 20)
	r := w.reconciler()
	res, err := r.ReconcileFleet(ctx, w.load(t), nil, DefaultPolicy(), FleetOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 20 || len(res.Left) != 0 || res.Groups != 20 {
		t.Fatalf("links %d, left %d, groups %d; want 20, 0, 20", len(res.Links), len(res.Left), res.Groups)
	}
	for i, lr := range res.Links {
		if lr.Err != nil {
			t.Errorf("link %d: %v", i, lr.Err)
		}
		if lr.Link.DestinationDB != i+1 || lr.Link.SourceDatabase != i+1 {
			t.Errorf("report %d is for %+v: reports must come in the order of the links", i, lr.Link)
		}
	}
	if res.Writes != 40 || w.writes() != 40 {
		t.Errorf("writes: result %d, clusters %d; want one per side of each link (40)", res.Writes, w.writes())
	}
	for _, db := range w.clusters["east"].dbs {
		if len(db.AuthenticationSSLClientCerts) != 1 || !certs.SameCert(db.AuthenticationSSLClientCerts[0].ClientCert, w.c["westSyncer"].PEM) {
			t.Errorf("east/%d does not trust exactly west's syncer certificate", db.UID)
		}
	}

	// A second sweep over a fresh snapshot reads each cluster twice and writes nothing.
	for _, c := range w.clusters {
		c.calls, c.writes, c.dryRuns = 0, 0, 0
	}
	res, err = r.ReconcileFleet(ctx, w.load(t), nil, DefaultPolicy(), FleetOptions{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 0 || res.Writes != 0 {
		t.Errorf("converged fleet: %d calls and %d writes after the snapshot, want none", res.Calls, res.Writes)
	}
	for name, c := range w.clusters {
		if c.calls != 2 {
			t.Errorf("%s: %d calls, want the two snapshot reads", name, c.calls)
		}
	}
}

func TestReconcileFleetWritesASharedSourceOnce(t *testing.T) {
	w := newWorld(t, true) // east/1 replicated to west/1 and north/1
	res, err := w.reconciler().ReconcileFleet(context.Background(), w.load(t), nil, DefaultPolicy(), FleetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != 1 || len(res.Links) != 2 {
		t.Fatalf("groups %d, links %d; want both links in one group", res.Groups, len(res.Links))
	}
	for _, lr := range res.Links {
		if lr.Err != nil {
			t.Errorf("%+v: %v", lr.Link, lr.Err)
		}
	}
	if got := w.clusters["east"].writes; got != 1 {
		t.Errorf("east/1 written %d times, want once for both destinations", got)
	}
	east := w.clusters["east"].db(1)
	if len(east.AuthenticationSSLClientCerts) != 2 {
		t.Errorf("east/1 trusts %d certificates, want west's and north's syncer", len(east.AuthenticationSSLClientCerts))
	}
}

func TestReconcileFleetBoundsConcurrency(t *testing.T) {
	const limit = 2
	w := pairsWorld(t, 6)
	var mu sync.Mutex
	inflight, peak := 0, 0
	cond := sync.NewCond(&mu)
	// Each group's first call (east's validation PUT) waits until limit groups are in flight, so a
	// correct bound shows exactly limit at once and a missing bound shows more.
	reg := gatedRegistry{Registry: w.reg, before: func(_ context.Context, cluster string, dryRun bool) {
		if cluster != "east" || !dryRun {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		inflight++
		peak = max(peak, inflight)
		cond.Broadcast()
		timeout := time.AfterFunc(5*time.Second, func() { mu.Lock(); cond.Broadcast(); mu.Unlock() })
		defer timeout.Stop()
		start := time.Now()
		for inflight < limit && time.Since(start) < 5*time.Second {
			cond.Wait()
		}
	}}
	f, err := LoadFleet(context.Background(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.reconciler().ReconcileFleet(context.Background(), f, nil, DefaultPolicy(), FleetOptions{
		Concurrency: limit,
		Done: func([]LinkReport) {
			mu.Lock()
			inflight--
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 6 {
		t.Fatalf("%d links reconciled, want 6", len(res.Links))
	}
	if peak != limit {
		t.Errorf("at most %d groups ran at once, want exactly %d", peak, limit)
	}
}

func TestReconcileFleetStopsStartingWorkNearTheDeadline(t *testing.T) {
	const margin = time.Second
	w := pairsWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), margin+time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var once sync.Once
	// The first group's first write is held until less than the margin is left: the group is in
	// flight when time runs short, and must finish; the others must not start.
	reg := gatedRegistry{Registry: w.reg, before: func(ctx context.Context, _ string, _ bool) {
		once.Do(func() {
			for time.Until(deadline) >= margin && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		})
	}}
	f, err := LoadFleet(ctx, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.reconciler().ReconcileFleet(ctx, f, nil, DefaultPolicy(), FleetOptions{Concurrency: 1, StopMargin: margin})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 1 || res.Links[0].Err != nil || res.Links[0].Link.DestinationDB != 1 {
		t.Fatalf("reconciled %+v, want only west/1, converged", res.Links)
	}
	var left []string
	for _, l := range res.Left {
		left = append(left, l.String())
	}
	if diff := cmp.Diff([]string{"west/2 <- east/2", "west/3 <- east/3"}, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if w.writes() != 2 {
		t.Errorf("%d writes, want the in-flight link's two sides only", w.writes())
	}
}

func TestReconcileFleetPastTheMarginStartsNothing(t *testing.T) {
	w := pairsWorld(t, 3)
	f := w.load(t)
	for _, c := range w.clusters {
		c.calls = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := w.reconciler().ReconcileFleet(ctx, f, nil, DefaultPolicy(), FleetOptions{StopMargin: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Links) != 0 || len(res.Left) != 3 {
		t.Errorf("links %d, left %d; want 0, 3", len(res.Links), len(res.Left))
	}
	for name, c := range w.clusters {
		if c.calls != 0 {
			t.Errorf("%s called %d times after the snapshot, want never", name, c.calls)
		}
	}
	if len(w.aud.events) != 0 {
		t.Errorf("%d audit events, want none: nothing was attempted", len(w.aud.events))
	}
}

func TestReconcileFleetRefusesAnInvalidPolicy(t *testing.T) {
	w := pairsWorld(t, 1)
	_, err := w.reconciler().ReconcileFleet(context.Background(), w.load(t), nil, Policy{Scope: "everything"}, FleetOptions{})
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Code != CodeInvalidPolicy {
		t.Fatalf("error %v, want a %s rejection", err, CodeInvalidPolicy)
	}
	if w.writes()+w.dryRuns() != 0 {
		t.Error("an invalid policy changed something")
	}
}

func TestInterleaveSpreadsGroupsOverClusters(t *testing.T) {
	links := []Link{
		{Dest: LinkEnd{"a", 1}}, {Dest: LinkEnd{"a", 2}}, {Dest: LinkEnd{"a", 3}},
		{Dest: LinkEnd{"b", 1}}, {Dest: LinkEnd{"c", 1}}, {Dest: LinkEnd{"c", 2}},
	}
	groups := [][]int{{0}, {1}, {2}, {3}, {4}, {5}}
	want := [][]int{{0}, {3}, {4}, {1}, {5}, {2}}
	if diff := cmp.Diff(want, interleave(groups, links)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
