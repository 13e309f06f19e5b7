package sweep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

// clock is a settable clock, the sweep's notion of now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// ring is n clusters c00..c<n-1>; cluster i holds k source databases (uids 1..k) and k destination
// databases (uids k+1..2k), destination k+j replicating source j of the previous cluster. No link
// is secured: every one is new to the sweep.
func ring(n, k int) *simulator.Topology {
	topo := &simulator.Topology{}
	name := func(i int) string { return fmt.Sprintf("c%02d", (i+n)%n) }
	for i := range n {
		cs := simulator.ClusterSpec{
			Name: name(i), FQDN: name(i) + ".redis.local",
			Users: []simulator.UserSpec{{Username: "admin@" + name(i), Password: "admin-pass-" + name(i), Role: simulator.RoleAdmin}},
		}
		for j := 1; j <= k; j++ {
			cs.Databases = append(cs.Databases, simulator.DBSpec{UID: j, Name: fmt.Sprintf("src-%d", j), Port: 10000 + i*1000 + j})
		}
		for j := 1; j <= k; j++ {
			cs.Databases = append(cs.Databases, simulator.DBSpec{UID: k + j, Name: fmt.Sprintf("dst-%d", j), Port: 10000 + i*1000 + k + j,
				ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: name(i - 1), DB: j}}})
		}
		topo.Clusters = append(topo.Clusters, cs)
	}
	return topo
}

// pairs is east with n source databases and west with n destinations, west/i replicating east/i,
// plus the given extra clusters (each with one standalone database).
func pairs(n int, extra ...string) *simulator.Topology {
	east := simulator.ClusterSpec{Name: "east", FQDN: "east.redis.local",
		Users: []simulator.UserSpec{{Username: "admin@east", Password: "east-admin-pass", Role: simulator.RoleAdmin}}}
	west := simulator.ClusterSpec{Name: "west", FQDN: "west.redis.local",
		Users: []simulator.UserSpec{{Username: "admin@west", Password: "west-admin-pass", Role: simulator.RoleAdmin}}}
	for i := 1; i <= n; i++ {
		east.Databases = append(east.Databases, simulator.DBSpec{UID: i, Name: fmt.Sprintf("orders-%d", i), Port: 12000 + i})
		west.Databases = append(west.Databases, simulator.DBSpec{UID: i, Name: fmt.Sprintf("orders-%d-dr", i), Port: 13000 + i,
			ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: "east", DB: i}}})
	}
	topo := &simulator.Topology{Clusters: []simulator.ClusterSpec{east, west}}
	for i, name := range extra {
		topo.Clusters = append(topo.Clusters, simulator.ClusterSpec{Name: name, FQDN: name + ".redis.local",
			Users:     []simulator.UserSpec{{Username: "admin@" + name, Password: name + "-admin-pass", Role: simulator.RoleAdmin}},
			Databases: []simulator.DBSpec{{UID: 1, Name: name + "-cache", Port: 14000 + i}}})
	}
	return topo
}

// fixture is one test's world: the package's moto_server, a simulator, the registry, the function's
// App, a notice table and a settable clock.
type fixture struct {
	t     testing.TB
	st    *localstack.Stack
	app   *lambdaapp.App
	logs  *bytes.Buffer
	clock *clock
	table string
	opts  sweep.Options
}

func newFixture(t testing.TB, topo *simulator.Topology, opts sweep.Options) *fixture {
	t.Helper()
	st := testkit.NewStack(t, motoURL, testkit.Options{Topology: topo, Sim: simulator.Options{ActionDuration: 5 * time.Millisecond}})
	logs := &bytes.Buffer{}
	f := &fixture{t: t, st: st, logs: logs, clock: &clock{t: time.Now()}, opts: opts}
	f.app = testkit.NewApp(st, logs)
	f.app.Now = f.clock.Now
	f.table = fmt.Sprintf("notices-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sweep.CreateNoticeTable(ctx, dynamodb.NewFromConfig(st.AWS), f.table); err != nil {
		t.Fatal(err)
	}
	if f.opts.Poll == 0 {
		f.opts.Poll = 10 * time.Millisecond
	}
	return f
}

// sweeper wires a Sweeper to the App the way the function's main does.
func (f *fixture) sweeper() *sweep.Sweeper {
	return sweep.New(sweep.Config{
		Registry:           f.app.Registry,
		Certs:              f.app.Registry,
		Notices:            sweep.NewDynamoNotices(dynamodb.NewFromConfig(f.st.AWS), f.table),
		RecordCertificates: f.app.RecordFleetCertificates,
		Reconciler:         f.app.Reconciler,
		Policy:             reconcile.DefaultPolicy(),
		Options:            f.opts,
		Now:                f.app.Now,
		Logger:             f.app.Logger,
	})
}

// sweep runs one sweep with a two-minute deadline and checks that nothing secret was logged or
// reported.
func (f *fixture) sweep(req sweep.Request) (sweep.Report, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return f.sweepCtx(ctx, req)
}

func (f *fixture) sweepCtx(ctx context.Context, req sweep.Request) (sweep.Report, error) {
	f.t.Helper()
	rec := audit.NewRecorder(sweep.GraceSink(f.app.Sink), audit.Run{Actor: "test", Trigger: audit.Trigger{Kind: sweep.KindInvoke}, DryRun: req.DryRun}, f.app.Now)
	rep, err := f.sweeper().Run(ctx, rec, req)
	out, _ := json.Marshal(rep)
	testkit.NoLeaks(f.t, f.st, "sweep report", string(out))
	testkit.NoLeaks(f.t, f.st, "function logs", f.logs.String())
	if err != nil {
		testkit.NoLeaks(f.t, f.st, "sweep error", err.Error())
	}
	return rep, err
}

// events drains the audit trail (schema-validated and leak-checked by testkit).
func (f *fixture) events() []awslocal.Captured {
	f.t.Helper()
	return testkit.AuditEvents(f.t, f.st, 2*time.Second)
}

func (f *fixture) resetCalls() {
	for _, c := range f.st.Sim.Clusters() {
		f.st.Sim.Cluster(c.Name).ResetCalls()
	}
}

func (f *fixture) writes() int {
	n := 0
	for _, c := range f.st.Sim.Clusters() {
		n += testkit.Writes(f.st, c.Name)
	}
	return n
}

// ofType keeps the events of one detail type.
func ofType(evs []awslocal.Captured, detailType string) []audit.Event {
	var out []audit.Event
	for _, e := range evs {
		if e.DetailType == detailType {
			out = append(out, e.Event)
		}
	}
	return out
}

func fingerprint(t testing.TB, pemText string) string {
	t.Helper()
	c, err := certs.ParseOne(pemText)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c.Fingerprint
}

func trusts(t testing.TB, db testkit.DB) []string {
	t.Helper()
	var fps []string
	for _, c := range db.ClientCerts {
		fps = append(fps, fingerprint(t, c.ClientCert))
	}
	slices.Sort(fps)
	return fps
}

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}
