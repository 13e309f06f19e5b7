package localrun

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/audit/schema"
)

var motoURL string

// buildDir holds the bootstraps, built once for the package.
var buildDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "localrun-e2e-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := testkit.MainWithMoto(m, &motoURL)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// session starts the real functions under the emulator against a fresh simulator, sharing the
// package's moto_server.
func session(t *testing.T) (*Session, *syncBuffer) {
	t.Helper()
	return sessionWith(t, testkit.Options{NoRegister: true})
}

// sessionWith is session on a stack made with opts.
func sessionWith(t *testing.T, opts testkit.Options, env ...string) (*Session, *syncBuffer) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the real bootstraps (skipped with -short)")
	}
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	st := testkit.NewStack(t, motoURL, opts)
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	overrides := map[string]string{}
	for i := 0; i+1 < len(env); i += 2 {
		overrides[env[i]] = env[i+1]
	}
	s, err := Start(ctx, Options{RepoRoot: root, BuildDir: buildDir, Logs: logs, LogLevel: "debug", UseStack: st, Env: overrides})
	if err != nil {
		t.Fatalf("start session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, logs
}

// syncBuffer collects the functions' logs; the emulator writes from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func invoke(t *testing.T, s *Session, fn, file string) Invocation {
	t.Helper()
	ev, err := os.ReadFile("../../events/" + file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv, err := s.Invoke(ctx, fn, ev)
	if err != nil {
		t.Fatalf("invoke %s with %s: %v", fn, file, err)
	}
	return inv
}

func TestEndToEndRegisterThenSecureALink(t *testing.T) {
	s, logs := session(t)
	st := s.Stack
	if err := st.Register(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The cluster-registered function records east's certificates (and west's, which it finds
	// missing) and reconciles every link touching east: the demo link gets secured.
	reg := invoke(t, s, "ClusterRegisteredFunction", "cluster-registered.json")
	if reg.Result.FunctionError != nil {
		t.Fatalf("ClusterRegisteredFunction: %v", reg.Result.FunctionError)
	}
	var regResp struct {
		Certificates []struct{ Cluster, Kind, Outcome string }
	}
	if err := json.Unmarshal(reg.Result.Payload, &regResp); err != nil {
		t.Fatal(err)
	}
	if len(regResp.Certificates) != 4 {
		t.Errorf("recorded %d certificates, want syncer and proxy of both clusters: %+v", len(regResp.Certificates), regResp.Certificates)
	}
	for _, c := range regResp.Certificates {
		if c.Outcome != string(audit.Succeeded) {
			t.Errorf("certificate %+v not recorded", c)
		}
	}
	db := testkit.ReadDB(t, st, "west", 1)
	if rs := db.ReplicaSources[0]; !rs.Encryption || rs.Status != "in-sync" {
		t.Errorf("after registration the link should be secured and in sync: %+v", rs)
	}

	// The replica-created event for the same link now finds nothing to do.
	west, east := st.Sim.Cluster("west"), st.Sim.Cluster("east")
	west.ResetCalls()
	east.ResetCalls()
	created := invoke(t, s, "ReplicaCreatedFunction", "replica-created-replica-scope.json")
	if created.Result.FunctionError != nil {
		t.Fatalf("ReplicaCreatedFunction: %v", created.Result.FunctionError)
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != 0 {
		t.Errorf("replica-created on a secured link made %d writes", w)
	}
	t.Logf("converged link: %d cluster API calls; cold starts: %v", testkit.Calls(st, "east")+testkit.Calls(st, "west"), s.ColdStarts)

	checkAudit(t, st, append(reg.Audit, created.Audit...))
	testkit.NoLeaks(t, st, "function logs", logs.String())
	if !strings.Contains(logs.String(), "{") {
		t.Errorf("expected the functions' JSON logs to be captured")
	}
}

func TestEndToEndBadEventsAreRejected(t *testing.T) {
	s, logs := session(t)
	st := s.Stack
	if err := st.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ fn, file string }{
		{"ReplicaCreatedFunction", "malformed-replica-created-no-destination.json"},
		{"ReplicaCreatedFunction", "malformed-not-an-object.json"},
		{"ReplicaCreatedFunction", "replica-created-unknown-cluster.json"},
		{"ClusterRegisteredFunction", "malformed-cluster-registered-bad-name.json"},
	} {
		inv := invoke(t, s, tc.fn, tc.file)
		if inv.Result.FunctionError == nil {
			t.Errorf("%s with %s: want a function error, got %s", tc.fn, tc.file, inv.Result.Payload)
			continue
		}
		if !hasOutcome(inv.Audit, audit.Rejected) {
			t.Errorf("%s with %s: no rejected audit event: %v", tc.fn, tc.file, testkit.Outcomes(inv.Audit))
		}
		testkit.NoLeaks(t, st, "function error", inv.Result.FunctionError.Message)
		checkAudit(t, st, inv.Audit)
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != 0 {
		t.Errorf("bad events made %d writes", w)
	}
	testkit.NoLeaks(t, st, "function logs", logs.String())
}

func TestEndToEndDryRun(t *testing.T) {
	s, _ := session(t)
	st := s.Stack
	if err := st.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	inv := invoke(t, s, "ReplicaCreatedFunction", "replica-created-dry-run.json")
	if inv.Result.FunctionError != nil {
		t.Fatalf("dry run: %v", inv.Result.FunctionError)
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != 0 {
		t.Errorf("dry run made %d writes", w)
	}
	if !testkit.Has(inv.Audit, "reconcile-source", audit.Planned) || !testkit.Has(inv.Audit, "reconcile-destination", audit.Planned) {
		t.Errorf("dry run should plan both sides: %v", testkit.Outcomes(inv.Audit))
	}
	checkAudit(t, st, inv.Audit)
}

func hasOutcome(evs []awslocal.Captured, o audit.Outcome) bool {
	for _, e := range evs {
		if e.Event.Outcome == o {
			return true
		}
	}
	return false
}

// checkAudit validates every event against the schema and scans it for the stack's secrets.
func checkAudit(t *testing.T, st *localstack.Stack, evs []awslocal.Captured) {
	t.Helper()
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Error("no audit events")
	}
	for _, e := range evs {
		if err := v.Validate(e.Detail); err != nil {
			t.Errorf("audit event %s/%s: %v", e.Event.Step, e.Event.Outcome, err)
		}
		testkit.NoLeaks(t, st, "audit event", string(e.Detail))
	}
}
