package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// fanInTopology is one source cluster whose databases 1..rounds each have a destination on every one
// of dests destination clusters: round r secures the dests links of source database r at once.
// Odd source databases start with tls_mode enabled, which no run may lower.
func fanInTopology(dests, rounds int) simulator.Topology {
	user := func(c string) []simulator.UserSpec {
		return []simulator.UserSpec{{Username: "admin@" + c + ".redis.local", Password: c + "-admin-test-password", Role: simulator.RoleAdmin}}
	}
	src := simulator.ClusterSpec{Name: "src", FQDN: "src.redis.local", Users: user("src")}
	for r := 1; r <= rounds; r++ {
		db := simulator.DBSpec{UID: r, Name: "orders-" + strconv.Itoa(r), Port: 12000 + r}
		if r%2 == 1 {
			db.TLSMode = "enabled"
		}
		src.Databases = append(src.Databases, db)
	}
	topo := simulator.Topology{Clusters: []simulator.ClusterSpec{src}}
	for d := 1; d <= dests; d++ {
		name := fmt.Sprintf("dst%d", d)
		c := simulator.ClusterSpec{Name: name, FQDN: name + ".redis.local", Users: user(name)}
		for r := 1; r <= rounds; r++ {
			c.Databases = append(c.Databases, simulator.DBSpec{UID: r, Name: "orders-copy-" + strconv.Itoa(r),
				Port: 13000 + 100*d + r, ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: "src", DB: r}}})
		}
		topo.Clusters = append(topo.Clusters, c)
	}
	return topo
}

func replicaCreated(dest string, uid int, id string) []byte {
	ev := map[string]any{
		"id": id, "detail-type": "Replica Database Created", "source": "replica-tls.pipeline", "version": "0",
		"account": "123456789012", "region": "us-east-1", "time": "2026-11-28T04:00:00Z", "resources": []string{},
		"detail": map[string]any{"destination": map[string]any{"cluster": dest, "database": uid}, "tls_scope": "replica"},
	}
	b, _ := json.Marshal(ev)
	return b
}

// TestConcurrentReplicaCreatedLosesNothing runs the real replica-created bootstrap in 8 emulator
// instances at once, for 8 destinations of one source database, round after round. Before leases
// the source ended up not trusting one to three destinations in half of the rounds while every run
// reported success.
func TestConcurrentReplicaCreatedLosesNothing(t *testing.T) {
	const dests = 8
	rounds := 4 // make test; REPLICA_TLS_CONCURRENCY_ROUNDS=20 for the full measurement
	if v := os.Getenv("REPLICA_TLS_CONCURRENCY_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("REPLICA_TLS_CONCURRENCY_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	// One source database, reset before every round: the simulator's strict mode re-checks every link
	// on every read, so the topology stays small whatever the number of rounds.
	s, logs := sessionWith(t, testkit.Options{Topology: ptr(fanInTopology(dests, 1)),
		Sim: simulator.Options{ReconnectOnRead: true}})
	st := s.Stack
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// Registered and pinned, as the cluster-registered function leaves them: each run then reads
	// only its destination's cluster and the source.
	if err := st.Pin(ctx); err != nil {
		t.Fatal(err)
	}

	syncers := map[string]string{} // destination cluster -> syncer fingerprint
	for d := 1; d <= dests; d++ {
		name := fmt.Sprintf("dst%d", d)
		pemText, _ := st.Sim.Cluster(name).SyncerCert()
		c, err := certs.ParseOne(pemText)
		if err != nil {
			t.Fatal(err)
		}
		syncers[name] = c.Fingerprint
	}
	proxyPEM, _ := st.Sim.Cluster("src").ProxyCert()
	proxy, err := certs.ParseOne(proxyPEM)
	if err != nil {
		t.Fatal(err)
	}

	var allEvents []string
	var lost, failedRuns, slowest int
	for r := 1; r <= rounds; r++ {
		// A new source database, as far as TLS goes: odd rounds start with tls_mode enabled, which no
		// run may lower; every destination entry starts unencrypted.
		mode := "disabled"
		if r%2 == 1 {
			mode = "enabled"
		}
		if err := st.Sim.Cluster("src").MutateDB(1, func(c *simulator.DBConfig) {
			c.TLSMode, c.EnforceClientAuthentication, c.AuthenticationSSLClientCerts = mode, "disabled", nil
		}); err != nil {
			t.Fatal(err)
		}
		for d := 1; d <= dests; d++ {
			if err := st.Sim.Cluster(fmt.Sprintf("dst%d", d)).MutateDB(1, func(c *simulator.DBConfig) {
				c.ReplicaSources[0].Encryption, c.ReplicaSources[0].ServerCert = false, ""
			}); err != nil {
				t.Fatal(err)
			}
		}
		events := make([][]byte, dests)
		for d := 1; d <= dests; d++ {
			events[d-1] = replicaCreated(fmt.Sprintf("dst%d", d), 1, fmt.Sprintf("round-%d-dest-%d", r, d))
		}
		start := time.Now()
		results, evs, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", events)
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		ms := int(time.Since(start).Milliseconds())
		if ms > slowest && r > 1 { // round 1 includes cold starts
			slowest = ms
		}
		t.Logf("round %d: %d concurrent runs in %d ms", r, dests, ms)
		for i, res := range results {
			if res.FunctionError != nil {
				failedRuns++
				t.Errorf("round %d, run for dst%d: %v", r, i+1, res.FunctionError)
			}
		}
		for _, e := range evs {
			allEvents = append(allEvents, e.Event.Step+":"+string(e.Event.Outcome))
		}
		checkAudit(t, st, evs)

		db := testkit.ReadDB(t, st, "src", 1)
		var trusted []string
		for _, cc := range db.ClientCerts {
			if c, err := certs.ParseOne(cc.ClientCert); err == nil {
				trusted = append(trusted, c.Fingerprint)
			}
		}
		for name, fp := range syncers {
			if !slices.Contains(trusted, fp) {
				lost++
				t.Errorf("round %d: src/1 does not trust %s's syncer certificate", r, name)
			}
		}
		wantMode := "replica_ssl"
		if r%2 == 1 {
			wantMode = "enabled"
		}
		if db.TLSMode != wantMode || db.ClientAuth != "enabled" {
			t.Errorf("round %d: src/1 has tls_mode %s, client authentication %s; want %s, enabled", r, db.TLSMode, db.ClientAuth, wantMode)
		}
		for d := 1; d <= dests; d++ {
			dst := testkit.ReadDB(t, st, fmt.Sprintf("dst%d", d), 1)
			if len(dst.ReplicaSources) != 1 {
				t.Fatalf("round %d: dst%d/1 has %d replica sources, want 1", r, d, len(dst.ReplicaSources))
			}
			rs := dst.ReplicaSources[0]
			if !rs.Encryption || !certs.SameCert(rs.ServerCert, proxy.PEM) || rs.Status != "in-sync" {
				t.Errorf("round %d: dst%d/1 entry: encryption %v, proxy certificate %v, status %s (%s)", r, d,
					rs.Encryption, certs.SameCert(rs.ServerCert, proxy.PEM), rs.Status, rs.LastError)
			}
		}
	}
	if !slices.Contains(allEvents, "reconcile-source:succeeded") {
		t.Errorf("no source was ever written: the test did not exercise concurrent writers (%v)", allEvents[:min(len(allEvents), 10)])
	}
	testkit.NoLeaks(t, st, "function logs", logs.String())
	t.Logf("%d rounds of %d concurrent runs: %d certificates lost, %d runs failed; slowest round %d ms", rounds, dests, lost, failedRuns, slowest)
}

// TestConcurrentReplicaCreatedDuplicateDelivery: the same event delivered to 4 instances at once (at
// least once delivery) converges the link once; the other runs find nothing to do under the lease.
func TestConcurrentReplicaCreatedDuplicateDelivery(t *testing.T) {
	s, _ := sessionWith(t, testkit.Options{Topology: ptr(fanInTopology(1, 1))})
	st := s.Stack
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ev := replicaCreated("dst1", 1, "dup-1")
	results, evs, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", [][]byte{ev, ev, ev, ev})
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		if res.FunctionError != nil {
			t.Errorf("run %d: %v", i, res.FunctionError)
		}
	}
	var started int
	for _, e := range evs {
		if e.Event.Outcome == audit.Started && (e.Event.Step == "reconcile-source" || e.Event.Step == "reconcile-destination") {
			started++
		}
	}
	if w := testkit.Writes(st, "src") + testkit.Writes(st, "dst1"); w != 2 || started != 2 {
		t.Errorf("4 deliveries of one event made %d writes and %d started events; want 2 of each (one per side)", w, started)
	}
	checkAudit(t, st, evs)
}

func ptr[T any](v T) *T { return &v }

// TestSweepDuringEvents: the scheduled sweep runs while replica-created events for the same source
// database arrive; the sweep may remove certificates, the events add them: nothing is lost.
func TestSweepDuringEvents(t *testing.T) {
	const dests = 4
	s, _ := sessionWith(t, testkit.Options{Topology: ptr(fanInTopology(dests, 2)), Sim: simulator.Options{ReconnectOnRead: true}})
	st := s.Stack
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := st.Pin(ctx); err != nil {
		t.Fatal(err)
	}
	events := make([][]byte, dests)
	for d := 1; d <= dests; d++ {
		events[d-1] = replicaCreated(fmt.Sprintf("dst%d", d), 1, fmt.Sprintf("sweep-race-%d", d))
	}
	sweepEvent, err := os.ReadFile("../../events/sweep-scheduled.json")
	if err != nil {
		t.Fatal(err)
	}
	type sweepOut struct {
		inv Invocation
		err error
	}
	done := make(chan sweepOut, 1)
	go func() {
		inv, err := s.Invoke(ctx, "SweepFunction", sweepEvent)
		done <- sweepOut{inv, err}
	}()
	results, _, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", events)
	if err != nil {
		t.Fatal(err)
	}
	sw := <-done
	if sw.err != nil || sw.inv.Result.FunctionError != nil {
		t.Fatalf("sweep: %v %v", sw.err, sw.inv.Result.FunctionError)
	}
	for i, res := range results {
		if res.FunctionError != nil {
			t.Errorf("replica-created for dst%d: %v", i+1, res.FunctionError)
		}
	}
	for _, uid := range []int{1, 2} { // 1: events and sweep; 2: the sweep alone
		db := testkit.ReadDB(t, st, "src", uid)
		var trusted []string
		for _, cc := range db.ClientCerts {
			if c, err := certs.ParseOne(cc.ClientCert); err == nil {
				trusted = append(trusted, c.Fingerprint)
			}
		}
		for d := 1; d <= dests; d++ {
			pemText, _ := st.Sim.Cluster(fmt.Sprintf("dst%d", d)).SyncerCert()
			c, _ := certs.ParseOne(pemText)
			if !slices.Contains(trusted, c.Fingerprint) {
				t.Errorf("src/%d does not trust dst%d's syncer certificate", uid, d)
			}
			if rs := testkit.ReadDB(t, st, fmt.Sprintf("dst%d", d), uid).ReplicaSources[0]; !rs.Encryption || rs.Status != "in-sync" {
				t.Errorf("dst%d/%d: encryption %v, status %s", d, uid, rs.Encryption, rs.Status)
			}
		}
	}
}

// TestKilledRunsLeaseIsTakenOver: a run killed after its started event, while it holds the source
// database's lease, leaves the lease behind; the next run waits for it to expire (LEASE_TTL), takes
// it over and finishes the link.
func TestKilledRunsLeaseIsTakenOver(t *testing.T) {
	s, _ := sessionWith(t, testkit.Options{Topology: ptr(fanInTopology(1, 1))}, "LEASE_TTL", "3s")
	st := s.Stack
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := st.Pin(ctx); err != nil {
		t.Fatal(err)
	}
	ev := replicaCreated("dst1", 1, "killed-1")
	// Warm the first instance up (a cold start would race the kill), on a link already secured.
	if _, _, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", [][]byte{ev}); err != nil {
		t.Fatal(err)
	}
	if err := st.Sim.Cluster("src").MutateDB(1, func(c *simulator.DBConfig) {
		c.TLSMode, c.EnforceClientAuthentication, c.AuthenticationSSLClientCerts = "disabled", "disabled", nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Sim.Cluster("src").SetLatency(1500 * time.Millisecond) // every call on the source is slow

	first := make(chan error, 1)
	go func() {
		_, _, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", [][]byte{ev})
		first <- err
	}()
	killed := false
	for deadline := time.Now().Add(2 * time.Minute); !killed && time.Now().Before(deadline); {
		evs, err := st.Tap.Drain(ctx, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Event.Step == "reconcile-source" && e.Event.Outcome == audit.Started {
				if err := s.Kill("ReplicaCreatedFunction", 0); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
	}
	if !killed {
		t.Fatal("the first run never audited a started source change")
	}
	if err := <-first; err == nil {
		t.Error("the killed run reported success")
	}
	st.Sim.Cluster("src").SetLatency(0)

	start := time.Now()
	results, evs, err := s.InvokeConcurrently(ctx, "ReplicaCreatedFunction", [][]byte{ev})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].FunctionError != nil {
		t.Fatalf("the next run did not finish: %v", results[0].FunctionError)
	}
	db := testkit.ReadDB(t, st, "src", 1)
	if db.TLSMode != "replica_ssl" || db.ClientAuth != "enabled" || len(db.ClientCerts) != 1 {
		t.Errorf("after takeover src/1: tls_mode %s, client auth %s, %d trusted", db.TLSMode, db.ClientAuth, len(db.ClientCerts))
	}
	checkAudit(t, st, evs)
	t.Logf("the next run finished in %s, taking over the killed run's lease", time.Since(start).Round(time.Millisecond))
}
