// Package testkit holds the helpers the integration and end-to-end tests share: one moto_server per
// test package, a local stack per test with its own secret prefix and audit bus, reading the link's
// state from the simulator, and checking audit events against the schema and for leaked secrets.
package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/leakcheck"
	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/moto"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/audit/schema"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// AllowSkipEnv lets a developer without moto_server skip (loudly) instead of failing.
const AllowSkipEnv = "REPLICA_TLS_ALLOW_SKIP"

// MainWithMoto is a TestMain body: it starts one moto_server for the package, stores its URL in
// *url, runs the tests and stops it. Without moto_server it fails, or skips everything loudly when
// REPLICA_TLS_ALLOW_SKIP=1.
func MainWithMoto(m *testing.M, url *string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := moto.Start(ctx)
	cancel()
	if err != nil {
		if os.Getenv(AllowSkipEnv) == "1" {
			fmt.Fprintf(os.Stderr, "\n*** SKIPPING every test of this package: %v ***\n\n", err)
			return 0
		}
		fmt.Fprintf(os.Stderr, "FAIL: these tests need moto_server: %v (set %s=1 to skip loudly)\n", err, AllowSkipEnv)
		return 1
	}
	defer srv.Stop()
	*url = srv.URL
	return m.Run()
}

var counter struct {
	sync.Mutex
	n int
}

func unique(base string) string {
	counter.Lock()
	defer counter.Unlock()
	counter.n++
	return fmt.Sprintf("%s-%d-%d", base, os.Getpid(), counter.n)
}

// Options tunes NewStack.
type Options struct {
	Topology   *simulator.Topology // nil: the demo topology (east/1 -> west/1, unsecured)
	Sim        simulator.Options
	NoRegister bool // leave the registry empty
}

// NewStack starts a simulator against the package's moto_server with a fresh secret prefix and audit
// bus, registers every cluster (unless told not to) and stops everything when the test ends.
func NewStack(t testing.TB, motoURL string, opts Options) *localstack.Stack {
	t.Helper()
	if opts.Sim.ActionDuration == 0 {
		opts.Sim.ActionDuration = 20 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := localstack.Start(ctx, localstack.Options{
		Topology: opts.Topology, Sim: opts.Sim, MotoURL: motoURL,
		Prefix: unique("rtls") + "/", AuditBus: unique("audit"), LeaseTable: unique("leases"),
	})
	if err != nil {
		t.Fatalf("start local stack: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	if !opts.NoRegister {
		if err := st.Register(ctx); err != nil {
			t.Fatalf("register clusters: %v", err)
		}
	}
	return st
}

// AppConfig is the function configuration for a stack.
func AppConfig(st *localstack.Stack) lambdaapp.Config {
	return lambdaapp.Config{
		SecretPrefix: st.Prefix, AuditBus: st.AuditBus, DefaultScope: trigger.ScopeReplica,
		CacheTTL: 30 * time.Second, FunctionName: "test", LeaseTable: st.LeaseTable,
	}
}

// NewApp assembles the functions' App against a stack, logging at debug level into logs.
func NewApp(st *localstack.Stack, logs io.Writer) *lambdaapp.App {
	cfg := AppConfig(st)
	cfg.LogLevel = -4 // debug: the leak checks should see everything that could ever be logged
	// The functions run with the SDK's retries in Lambda; moto now and then drops a connection.
	awsCfg := st.AWS.Copy()
	awsCfg.RetryMaxAttempts = 3
	return lambdaapp.New(cfg, awsCfg, logs)
}

// Secrets lists every secret string of the stack's clusters: admin and viewer passwords and the
// databases' authentication_admin_pass, for leak checks.
func Secrets(t testing.TB, st *localstack.Stack) []string {
	t.Helper()
	var out []string
	for _, c := range st.Sim.Clusters() {
		out = append(out, c.AdminPassword)
		if c.ViewerPassword != "" {
			out = append(out, c.ViewerPassword)
		}
		h := st.Sim.Cluster(c.Name)
		for uid := 1; uid < 100; uid++ {
			raw, err := h.DB(uid)
			if err != nil {
				continue
			}
			var db struct {
				Pass string `json:"authentication_admin_pass"`
			}
			if json.Unmarshal(raw, &db) == nil && db.Pass != "" {
				out = append(out, db.Pass)
			}
		}
	}
	return out
}

// AuditEvents drains the stack's audit tap, validates every event against the committed schema and
// scans it for secrets. wait is how long to wait for a first event.
func AuditEvents(t testing.TB, st *localstack.Stack, wait time.Duration) []awslocal.Captured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	defer cancel()
	evs, err := st.Tap.Drain(ctx, wait)
	if err != nil {
		t.Fatalf("drain audit events: %v", err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	secrets := Secrets(t, st)
	for _, e := range evs {
		if err := v.Validate(e.Detail); err != nil {
			t.Errorf("audit event %s/%s does not validate: %v\n%s", e.Event.Step, e.Event.Outcome, err, e.Detail)
		}
		if err := leakcheck.Check("audit event "+e.Event.Step, string(e.Detail), secrets...); err != nil {
			t.Errorf("%v", err)
		}
	}
	return evs
}

// NoLeaks fails the test when text (captured logs, a response, an error) holds secret material.
func NoLeaks(t testing.TB, st *localstack.Stack, what, text string) {
	t.Helper()
	if err := leakcheck.Check(what, text, Secrets(t, st)...); err != nil {
		t.Errorf("%v", err)
	}
}

// Outcomes summarises captured events as "step:outcome" strings, in order.
func Outcomes(evs []awslocal.Captured) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.Event.Step+":"+string(e.Event.Outcome))
	}
	return out
}

// Has reports whether evs holds an event with this step and outcome.
func Has(evs []awslocal.Captured, step string, outcome audit.Outcome) bool {
	for _, e := range evs {
		if e.Event.Step == step && e.Event.Outcome == outcome {
			return true
		}
	}
	return false
}

// DB is the part of a simulated database the tests look at.
type DB struct {
	TLSMode     string `json:"tls_mode"`
	ClientAuth  string `json:"enforce_client_authentication"`
	ClientCerts []struct {
		ClientCert string `json:"client_cert"`
	} `json:"authentication_ssl_client_certs"`
	ReplicaSources []struct {
		UID        int    `json:"uid"`
		Encryption bool   `json:"encryption"`
		ServerCert string `json:"server_cert"`
		Status     string `json:"status"`
		LastError  string `json:"last_error"`
	} `json:"replica_sources"`
	Status string `json:"status"`
}

// ReadDB reads a database from the simulator (as a GET would, without counting an API call).
func ReadDB(t testing.TB, st *localstack.Stack, cluster string, uid int) DB {
	t.Helper()
	raw, err := st.Sim.Cluster(cluster).DB(uid)
	if err != nil {
		t.Fatalf("read %s/%d: %v", cluster, uid, err)
	}
	var db DB
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatalf("decode %s/%d: %v", cluster, uid, err)
	}
	return db
}

// Writes counts the mutating calls (PUT without dry_run, POST) a cluster received.
func Writes(st *localstack.Stack, cluster string) int {
	n := 0
	for route, c := range st.Sim.Cluster(cluster).Calls() {
		switch {
		case strings.HasPrefix(route, "PUT ") && strings.HasSuffix(route, simulator.DryRunSuffix):
			n -= c
		case strings.HasPrefix(route, "PUT "), strings.HasPrefix(route, "POST "):
			n += c
		}
	}
	return n
}

// Calls counts every call a cluster received.
func Calls(st *localstack.Stack, cluster string) int { return st.Sim.Cluster(cluster).TotalCalls() }

// FanOut is a topology where database 1 of cluster source replicates to database 1 of each of dests,
// every cluster named <name>.redis.local with one admin user, every link without TLS at first.
func FanOut(source string, dests ...string) *simulator.Topology {
	user := func(c string) []simulator.UserSpec {
		return []simulator.UserSpec{{Username: "admin@" + c + ".redis.local", Password: c + "-admin-test-password", Role: simulator.RoleAdmin}}
	}
	topo := &simulator.Topology{Clusters: []simulator.ClusterSpec{{Name: source, FQDN: source + ".redis.local", Users: user(source),
		Databases: []simulator.DBSpec{{UID: 1, Name: "orders", Port: 12000}}}}}
	for i, d := range dests {
		topo.Clusters = append(topo.Clusters, simulator.ClusterSpec{Name: d, FQDN: d + ".redis.local", Users: user(d),
			Databases: []simulator.DBSpec{{UID: 1, Name: "orders-" + d, Port: 12001 + i,
				ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: source, DB: 1}}}}})
	}
	return topo
}
