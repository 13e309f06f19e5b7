package rotation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

// grace is the pruning grace period the tests' reconcilers use.
const grace = 7 * 24 * time.Hour

// env is one test's world: a simulator (with the links already secured, as cluster registration
// leaves them), moto, the functions' App, and the rotation service emulation.
type env struct {
	t    testing.TB
	st   *localstack.Stack
	app  *lambdaapp.App
	svc  *testkit.RotationService
	sm   *secretsmanager.Client
	logs *bytes.Buffer
	// auditor, when set, wraps each step's recorder (to refuse events).
	auditor     func(rotation.Auditor) rotation.Auditor
	keyType     certs.KeyType
	testTimeout time.Duration // testSecret's bounded wait
	now         func() time.Time
}

func newEnv(t testing.TB, topo *simulator.Topology, simOpts simulator.Options) *env {
	t.Helper()
	if simOpts.ActionDuration == 0 {
		simOpts.ActionDuration = 5 * time.Millisecond
	}
	st := testkit.NewStack(t, motoURL, testkit.Options{Topology: topo, Sim: simOpts})
	logs := &bytes.Buffer{}
	// Like testkit.NewApp, but the SDK retries: moto now and then drops a connection mid-answer, and
	// these tests make hundreds of calls. (A retried PutEvents could duplicate an audit event.)
	cfg := testkit.AppConfig(st)
	cfg.LogLevel = -4
	awsCfg := st.AWS.Copy()
	awsCfg.RetryMaxAttempts = 3
	app := lambdaapp.New(cfg, awsCfg, logs)
	e := &env{t: t, st: st, app: app, logs: logs, sm: secretsmanager.NewFromConfig(st.AWS), keyType: certs.ECDSAP256,
		testTimeout: 10 * time.Second, now: time.Now,
		svc: testkit.NewRotationService(app.Store)}
	ctx := e.ctx()
	// Registration: the presented certificates become the secrets' first versions, and every link is
	// secured, as the cluster-registered function does.
	rec := app.Run("test-setup", "", false)
	fleet, err := app.LoadFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, warnings := app.RecordFleetCertificates(ctx, rec, fleet, false); len(warnings) > 0 {
		t.Fatalf("record certificates: %v", warnings)
	}
	r := e.reconciler(rec)
	for _, c := range st.Sim.Clusters() {
		if _, err := r.ReconcileCluster(ctx, fleet, c.Name, reconcile.DefaultPolicy()); err != nil {
			t.Fatalf("secure the links of %s: %v", c.Name, err)
		}
		fleet, err = app.LoadFleet(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	testkit.AuditEvents(t, st, 0) // setup events are checked, then forgotten
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// reconciler is what the rotation function wires: AWSPENDING proxies followed, pruning after grace.
func (e *env) reconciler(aud reconcile.Auditor) *reconcile.Reconciler {
	return reconcile.New(reconcile.Config{
		Registry: e.app.Registry, Certs: e.app.Registry,
		Auditor: aud, Poll: 5 * time.Millisecond, PruneAfter: grace, Logger: e.app.Logger, Now: e.now,
		Leases: e.app.RunLeases(e.app.Run("lease-owner", "", false)),
	})
}

// secretName is the certificate secret of a cluster.
func (e *env) secretName(cluster string, kind secretstore.Kind) string {
	return e.app.Store.SecretName(cluster, kind)
}

// enableRotation turns rotation on in moto: RotateSecret with RotateImmediately=false and no Lambda
// records the schedule (DescribeSecret then reports RotationEnabled). moto also copies the current
// value into a new AWSCURRENT version right away (the old one becomes AWSPREVIOUS): same certificate.
func (e *env) enableRotation(cluster string, kind secretstore.Kind) {
	e.t.Helper()
	_, err := e.sm.RotateSecret(e.ctx(), &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(e.secretName(cluster, kind)),
		RotateImmediately: aws.Bool(false),
		RotationRules:     &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		e.t.Fatalf("enable rotation of %s: %v", e.secretName(cluster, kind), err)
	}
	e.app.Store.Invalidate()
}

// startRotation is what RotateSecret does before invoking the function: a new token, AWSPENDING.
func (e *env) startRotation(cluster string, kind secretstore.Kind) string {
	token := newToken()
	e.svc.Begin(e.secretName(cluster, kind), token)
	return token
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// step invokes one rotation step the way the function does: a new run, recorder and reconciler.
func (e *env) step(step rotation.Step, secretID, token string) (rotation.Result, error) {
	e.t.Helper()
	rec := e.app.Run("secrets-manager-rotation", token, false)
	var aud rotation.Auditor = rec
	if e.auditor != nil {
		aud = e.auditor(rec)
	}
	// The leases every function takes, in the stack's DynamoDB table: concurrent steps coordinate.
	rc := e.reconciler(aud)
	r := rotation.New(rotation.Config{
		Secrets: e.svc, Registry: e.app.Registry, Resolver: e.app.Registry, Reconciler: rc, Auditor: aud, Leases: e.app.RunLeases(rec),
		Policy:   reconcile.DefaultPolicy(),
		Settings: rotation.Settings{KeyType: e.keyType, TestTimeout: e.testTimeout, TestPoll: 20 * time.Millisecond},
		Logger:   e.app.Logger,
	})
	res, err := r.Handle(e.ctx(), rotation.Request{Step: step, SecretID: secretID, Token: token})
	out, _ := json.Marshal(res)
	testkit.NoLeaks(e.t, e.st, "rotation result", string(out))
	testkit.NoLeaks(e.t, e.st, "function logs", e.logs.String())
	if err != nil {
		testkit.NoLeaks(e.t, e.st, "rotation error", err.Error())
	}
	return res, err
}

// mustStep runs a step that must succeed.
func (e *env) mustStep(step rotation.Step, secretID, token string) rotation.Result {
	e.t.Helper()
	res, err := e.step(step, secretID, token)
	if err != nil {
		e.t.Fatalf("%s: %v", step, err)
	}
	return res
}

// stages is the secret's version -> stages, as moto holds it.
func (e *env) stages(cluster string, kind secretstore.Kind) map[string][]string {
	e.t.Helper()
	d, err := e.app.Store.Describe(e.ctx(), e.secretName(cluster, kind))
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]string{}
	for id, st := range d.VersionStages {
		if len(st) > 0 {
			s := slices.Clone(st)
			slices.Sort(s)
			out[id] = s
		}
	}
	return out
}

// versionWith is the version carrying stage, "" when none does.
func versionWith(stages map[string][]string, stage string) string {
	for id, st := range stages {
		if slices.Contains(st, stage) {
			return id
		}
	}
	return ""
}

// certOf reads one version's certificate fingerprint.
func (e *env) certOf(cluster string, kind secretstore.Kind, versionID string) string {
	e.t.Helper()
	pemText, _, err := e.app.Store.CertWithKey(e.ctx(), cluster, kind, versionID)
	if err != nil {
		// A version recorded from a cluster has no key: read it through the version list instead.
		vs, verr := e.app.Store.CertVersions(e.ctx(), cluster, kind)
		if verr != nil {
			e.t.Fatal(verr)
		}
		for _, v := range vs {
			if v.VersionID == versionID {
				return fingerprint(e.t, v.Certificate)
			}
		}
		e.t.Fatalf("version %s of %s/%s: %v", versionID, cluster, kind, err)
	}
	return fingerprint(e.t, pemText)
}

func fingerprint(t testing.TB, pemText string) string {
	t.Helper()
	c, err := certs.ParseOne(pemText)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c.Fingerprint
}

// presented is the fingerprint of the certificate a simulated cluster presents.
func (e *env) presented(cluster string, kind secretstore.Kind) string {
	h := e.st.Sim.Cluster(cluster)
	pemText, _ := h.SyncerCert()
	if kind == secretstore.Proxy {
		pemText, _ = h.ProxyCert()
	}
	return fingerprint(e.t, pemText)
}

// trusted lists the fingerprints a simulated source DB trusts.
func (e *env) trusted(cluster string, uid int) []string {
	db := testkit.ReadDB(e.t, e.st, cluster, uid)
	var out []string
	for _, cc := range db.ClientCerts {
		out = append(out, fingerprint(e.t, cc.ClientCert))
	}
	return out
}

// events drains the audit events published so far (validated against the schema, scanned for leaks).
func (e *env) events() []audit.Event {
	var out []audit.Event
	for _, c := range testkit.AuditEvents(e.t, e.st, 0) {
		out = append(out, c.Event)
	}
	return out
}

// ---- the probe ----

// probe samples a destination database's links in the simulator every few milliseconds. With
// Options.ReconnectOnRead each sample is a fresh connection attempt, so it sees any moment in which
// a new replication connection would fail.
type probe struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples int
	bad     int
	maxBad  time.Duration // longest run of samples not in sync, first bad to first good again
	first   string        // the first bad sample: status and error
}

// counts returns the number of samples and of bad ones so far.
func (p *probe) counts() (samples, bad int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.samples, p.bad
}

// waitSamples waits until the probe took n more samples than now (bounded by a minute).
func (p *probe) waitSamples(t testing.TB, n int) {
	t.Helper()
	start, _ := p.counts()
	deadline := time.Now().Add(time.Minute)
	for {
		if got, _ := p.counts(); got >= start+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe took no %d samples within a minute", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startProbe(t testing.TB, sim *simulator.Sim, cluster string, uid int) *probe {
	t.Helper()
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	h := sim.Cluster(cluster)
	go func() {
		defer close(p.done)
		var badSince time.Time
		for {
			select {
			case <-p.stop:
				p.mu.Lock()
				if !badSince.IsZero() {
					p.maxBad = max(p.maxBad, time.Since(badSince))
				}
				p.mu.Unlock()
				return
			case <-time.After(2 * time.Millisecond):
			}
			raw, err := h.DB(uid)
			p.mu.Lock()
			if err != nil {
				p.first = err.Error()
				p.bad++
				p.mu.Unlock()
				continue
			}
			var db struct {
				ReplicaSources []struct {
					Status    string `json:"status"`
					LastError string `json:"last_error"`
				} `json:"replica_sources"`
			}
			_ = json.Unmarshal(raw, &db)
			p.samples++
			ok := len(db.ReplicaSources) > 0
			for _, rs := range db.ReplicaSources {
				if rs.Status != "in-sync" || rs.LastError != "" {
					ok = false
					if p.first == "" {
						p.first = fmt.Sprintf("%s (%s)", rs.Status, rs.LastError)
					}
				}
			}
			now := time.Now()
			switch {
			case !ok && badSince.IsZero():
				badSince = now
				p.bad++
			case !ok:
				p.bad++
			case ok && !badSince.IsZero():
				p.maxBad = max(p.maxBad, now.Sub(badSince))
				badSince = time.Time{}
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// halt stops the probe and waits for it; safe to call twice.
func (p *probe) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// assertNeverOutOfSync stops the probe and fails the test when it saw the link leave in-sync.
func (p *probe) assertNeverOutOfSync(t *testing.T) {
	t.Helper()
	p.halt()
	if p.samples < 10 {
		t.Errorf("the probe took only %d samples: it did not watch the rotation", p.samples)
	}
	if p.bad > 0 {
		t.Errorf("the link left in-sync in %d of %d samples (longest %s), first: %s", p.bad, p.samples, p.maxBad, p.first)
	}
}
