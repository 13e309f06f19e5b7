package simulator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// recorder is a DataPlane that notes what it was told and calls back into the simulator, as a real
// one would when it reports link status.
type recorder struct {
	mu     sync.Mutex
	events []string
	sim    *Sim
}

func (r *recorder) note(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) has(e string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, e)
}

func (r *recorder) DBChanged(_ context.Context, cluster string, cfg DBConfig) error {
	r.note(fmt.Sprintf("db %s/%d tls=%s sources=%d", cluster, cfg.UID, cfg.TLSMode, len(cfg.ReplicaSources)))
	r.sim.Clusters() // must not deadlock: the simulator calls without holding its lock
	return nil
}

func (r *recorder) CertsChanged(_ context.Context, cluster string, c ClusterCerts) error {
	r.note(fmt.Sprintf("certs %s syncer=%s", cluster, c.SyncerCert[28:48]))
	return nil
}

func (r *recorder) DropConnections(_ context.Context, cluster string) error {
	r.note("drop " + cluster)
	return fmt.Errorf("not supported here") // logged, not fatal
}

func TestDataPlane(t *testing.T) {
	rec := &recorder{}
	s, err := New(demo(t), Options{DataPlane: rec, ActionDuration: -1})
	if err != nil {
		t.Fatal(err)
	}
	rec.sim = s
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	east := s.Cluster("east")
	eastSyncer, _ := east.SyncerCert()
	for _, e := range []string{
		"db east/1 tls=disabled sources=0", "db west/1 tls=disabled sources=1",
		"certs east syncer=" + eastSyncer[28:48],
	} {
		waitFor(t, e, func() bool { return rec.has(e) })
	}

	adminClient(t, east).want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`, nil)
	if rec.has("db east/1 tls=replica_ssl sources=0") {
		t.Error("data plane told before the action completed")
	}
	east.CompleteActions()
	waitFor(t, "the completed change", func() bool { return rec.has("db east/1 tls=replica_ssl sources=0") })

	next := freshCert(t, "east.redis.local")
	if err := east.SetSyncerCert(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new syncer certificate", func() bool { return rec.has("certs east syncer=" + next.CertPEM[28:48]) })
	east.DropConnections()
	waitFor(t, "drop connections", func() bool { return rec.has("drop east") })
}

func TestReportLink(t *testing.T) {
	s, _, west := startDemo(t, Options{})
	report := LinkReport{Status: "out-of-sync", LastError: "master_link_status:down", Lag: 1500}
	if err := s.ReportLink("west", 1, 1, report); err != nil {
		t.Fatal(err)
	}
	wantLink(t, linkOf(t, west, 1), "out-of-sync", "master_link_status:down")
	west.DropConnections() // the data plane owns the status now
	if l := linkOf(t, west, 1); l.Status != "out-of-sync" || l.Lag != 1500 {
		t.Errorf("after DropConnections: %+v, want the report", l)
	}
	// A restart hands the link back to the rules until the data plane reports again.
	proxy, _ := s.Cluster("east").ProxyCert()
	if err := west.MutateDB(1, func(c *DBConfig) { c.ReplicaSources[0].Encryption, c.ReplicaSources[0].ServerCert = true, proxy }); err != nil {
		t.Fatal(err)
	}
	wantLink(t, linkOf(t, west, 1), "out-of-sync", "wrong version number")

	for _, bad := range []struct {
		cluster  string
		db, src  int
		status   string
		describe string
	}{
		{"west", 1, 1, "up", "unknown status"},
		{"north", 1, 1, "in-sync", "unknown cluster"},
		{"west", 9, 1, "in-sync", "unknown db"},
		{"west", 1, 9, "in-sync", "unknown source"},
	} {
		if err := s.ReportLink(bad.cluster, bad.db, bad.src, LinkReport{Status: bad.status}); err == nil {
			t.Errorf("ReportLink with an %s succeeded", bad.describe)
		}
	}
}

// owner is a LinkOwner whose DropConnections waits for a go-ahead, so that a test can report while the
// data plane is still applying a change.
type owner struct {
	recorder
	gate chan struct{}
}

func (o *owner) OwnLinks(s *Sim) { o.sim = s }

func (o *owner) DropConnections(ctx context.Context, cluster string) error {
	select {
	case <-o.gate:
	case <-ctx.Done(): // the simulator is closing (the test failed before the go-ahead)
		return ctx.Err()
	}
	o.note("drop " + cluster)
	return nil
}

func TestLinkOwnerReportsAreTheOnlyTruth(t *testing.T) {
	o := &owner{gate: make(chan struct{})}
	s, _, west := startDemo(t, Options{DataPlane: o})
	if o.sim != s {
		t.Fatal("Start did not hand the simulator to the LinkOwner")
	}
	if l := linkOf(t, west, 1); l.Status != "syncing" {
		t.Errorf("before any report: %q, want syncing (the rules no longer decide)", l.Status)
	}
	report := func(status, lastError string) {
		t.Helper()
		if err := s.ReportLink("west", 1, 1, LinkReport{Status: status, LastError: lastError}); err != nil {
			t.Fatal(err)
		}
	}
	// Reports count once the data plane has applied the start-up configuration.
	waitFor(t, "the first report to count", func() bool {
		report("in-sync", "")
		return linkOf(t, west, 1).Status == "in-sync"
	})

	// A reconnect (here DropConnections) is "syncing" until the data plane call carrying it returns;
	// what the data plane reports meanwhile describes the old connection and is dropped.
	west.DropConnections()
	if l := linkOf(t, west, 1); l.Status != "syncing" {
		t.Errorf("after DropConnections: %q, want syncing", l.Status)
	}
	report("in-sync", "")
	if l := linkOf(t, west, 1); l.Status != "syncing" {
		t.Errorf("a report from before the drop was applied counted: %q", l.Status)
	}
	close(o.gate)
	waitFor(t, "the drop to be applied", func() bool { return o.has("drop west") })
	waitFor(t, "reports to count again", func() bool {
		report("out-of-sync", "tlsv1 alert unknown ca")
		return linkOf(t, west, 1).Status == "out-of-sync"
	})
	wantLink(t, linkOf(t, west, 1), "out-of-sync", "unknown ca")
}

func TestSourceOf(t *testing.T) {
	s, _, west := startDemo(t, Options{})
	uri := dbOf(t, west, 1).ReplicaSources[0].URI
	tests := []struct {
		name        string
		uri         string
		wantCluster string
		wantUID     int
		wantOK      bool
	}{
		{"the demo link's uri", uri, "east", 1, true},
		{"unknown host", "redis://admin:x@redis-12000.nowhere.local:12000", "", 0, false},
		{"known host, wrong port", "redis://admin:x@redis-12000.east.redis.local:12001", "", 0, false},
		{"not a redis uri", "http://redis-12000.east.redis.local:12000", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster, uid, ok := s.SourceOf(tt.uri)
			if cluster != tt.wantCluster || uid != tt.wantUID || ok != tt.wantOK {
				t.Errorf("SourceOf = %q, %d, %v; want %q, %d, %v", cluster, uid, ok, tt.wantCluster, tt.wantUID, tt.wantOK)
			}
		})
	}
}
