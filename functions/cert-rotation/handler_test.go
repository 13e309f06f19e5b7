package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
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
	"github.com/replica-tls/replica-tls/shared/trigger"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

type fixture struct {
	t    *testing.T
	st   *localstack.Stack
	app  *lambdaapp.App
	svc  *testkit.RotationService
	logs *bytes.Buffer
	h    *handler
}

// newFixture starts the demo world with its links secured, as registration leaves them. prefix ""
// takes a fresh one; the sample events need the default "replica-tls/" (one test per package run).
func newFixture(t *testing.T, prefix string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var st *localstack.Stack
	sim := simulator.Options{ActionDuration: 5 * time.Millisecond, ReconnectOnRead: true}
	if prefix == "" {
		st = testkit.NewStack(t, motoURL, testkit.Options{Sim: sim})
	} else {
		var err error
		st, err = localstack.Start(ctx, localstack.Options{MotoURL: motoURL, Prefix: prefix, AuditBus: "cert-rotation-samples", Sim: sim})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(context.Background()) })
		if err := st.Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	logs := &bytes.Buffer{}
	cfg := testkit.AppConfig(st)
	awsCfg := st.AWS.Copy()
	awsCfg.RetryMaxAttempts = 3 // moto now and then drops a connection mid-answer
	app := lambdaapp.New(cfg, awsCfg, logs)
	f := &fixture{t: t, st: st, app: app, logs: logs, svc: testkit.NewRotationService(app.Store)}
	f.h = &handler{app: app, secrets: f.svc, settings: rotation.Settings{
		KeyType: certs.ECDSAP256, TestTimeout: 10 * time.Second, TestPoll: 20 * time.Millisecond, Grace: 7 * 24 * time.Hour,
	}}
	rec := app.Run("test-setup", "", false)
	fleet, err := app.LoadFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, warnings := app.RecordFleetCertificates(ctx, rec, fleet, false); len(warnings) > 0 {
		t.Fatal(warnings)
	}
	if _, err := app.Reconciler(rec).ReconcileLink(ctx, fleet, reconcile.LinkRef{DestCluster: "west", DestDB: 1}, reconcile.DefaultPolicy()); err != nil {
		t.Fatal(err)
	}
	testkit.AuditEvents(t, st, 0)
	return f
}

// enableRotation records a rotation schedule in moto (RotateSecret without a Lambda and without
// rotating now: moto copies the current value into a new AWSCURRENT version) and starts the rotation
// of token, as Secrets Manager would before invoking the function.
func (f *fixture) enableRotation(cluster string, kind secretstore.Kind, token string) {
	f.t.Helper()
	name := f.app.Store.SecretName(cluster, kind)
	_, err := secretsmanager.NewFromConfig(f.st.AWS).RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(name), RotateImmediately: aws.Bool(false),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.app.Store.Invalidate()
	f.svc.Begin(name, token)
}

// invoke runs the payload through the Lambda runtime's own decoding, as the deployed function.
func (f *fixture) invoke(payload []byte) (response, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := lambda.NewHandler(f.h.handle).Invoke(ctx, payload)
	var resp response
	if len(out) > 0 {
		if jerr := json.Unmarshal(out, &resp); jerr != nil {
			f.t.Fatalf("response is not JSON: %v", jerr)
		}
	}
	testkit.NoLeaks(f.t, f.st, "function response", string(out))
	testkit.NoLeaks(f.t, f.st, "function logs", f.logs.String())
	if err != nil {
		testkit.NoLeaks(f.t, f.st, "function error", err.Error())
	}
	return resp, err
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSampleEvents checks every rotation sample: it decodes strictly as a rotation invocation, and
// names a step, a certificate secret under the default prefix, and a token as Secrets Manager makes
// them, unless it is a malformed-* sample.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/rotation-*.json")
	if err != nil || len(files) < 8 {
		t.Fatalf("want the rotation samples in events/, found %d (%v)", len(files), err)
	}
	store := secretstore.New(nil, secretstore.Options{Prefix: secretstore.DefaultPrefix})
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader(sample(t, name)))
			dec.DisallowUnknownFields()
			var ev events.SecretsManagerSecretRotationEvent
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("not a rotation invocation: %v", err)
			}
			_, what, ok := store.ParseSecretName(ev.SecretID)
			valid := slices.Contains([]string{"createSecret", "setSecret", "testSecret", "finishSecret"}, ev.Step) &&
				ok && (what == "syncer" || what == "proxy") && len(ev.ClientRequestToken) >= 32 && len(ev.ClientRequestToken) <= 64
			if malformed := strings.HasPrefix(name, "rotation-malformed-"); valid == malformed {
				t.Errorf("valid request: %v, but the file is named %s", valid, name)
			}
		})
	}
}

// TestSampleEventsRotateTheDemoClusters replays the samples in order against the demo world: the
// syncer certificate of west and the proxy certificate of east rotate, the link stays in sync, and the
// malformed samples are rejected.
func TestSampleEventsRotateTheDemoClusters(t *testing.T) {
	f := newFixture(t, secretstore.DefaultPrefix)
	read := func(name string) events.SecretsManagerSecretRotationEvent {
		var ev events.SecretsManagerSecretRotationEvent
		if err := json.Unmarshal(sample(t, name), &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	westToken, eastToken := read("rotation-syncer-create-secret.json").ClientRequestToken, read("rotation-proxy-create-secret.json").ClientRequestToken
	f.enableRotation("west", secretstore.Syncer, westToken)
	f.enableRotation("east", secretstore.Proxy, eastToken)

	for _, kind := range []string{"syncer", "proxy"} {
		for _, step := range []string{"create", "set", "test", "finish"} {
			name := "rotation-" + kind + "-" + step + "-secret.json"
			resp, err := f.invoke(sample(t, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if resp.Outcome != audit.Succeeded || resp.RunID == "" || resp.Cluster == "" {
				t.Errorf("%s: response %+v", name, resp)
			}
		}
	}
	for _, check := range []struct {
		cluster string
		kind    secretstore.Kind
		token   string
	}{{"west", secretstore.Syncer, westToken}, {"east", secretstore.Proxy, eastToken}} {
		d, err := f.app.Store.Describe(context.Background(), f.app.Store.SecretName(check.cluster, check.kind))
		if err != nil {
			t.Fatal(err)
		}
		for id, stages := range d.VersionStages {
			if slices.Contains(stages, secretstore.StagePending) || slices.Contains(stages, secretstore.StageCurrent) != (id == check.token) {
				t.Errorf("%s %s: version %s has %v; want AWSCURRENT on %s only, no AWSPENDING", check.cluster, check.kind, id, stages, check.token)
			}
		}
	}
	if db := testkit.ReadDB(t, f.st, "west", 1); db.ReplicaSources[0].Status != "in-sync" {
		t.Errorf("west/1 is %s after both rotations", db.ReplicaSources[0].Status)
	}

	for _, name := range []string{"rotation-malformed-unknown-step.json", "rotation-malformed-api-secret.json"} {
		_, err := f.invoke(sample(t, name)) // the runtime hands back the error, not the response
		var rej *reconcile.RejectError
		if !errors.As(err, &rej) {
			t.Errorf("%s: err %v; want a rejection", name, err)
		}
	}
	evs := testkit.AuditEvents(t, f.st, 0)
	for _, want := range []string{rotation.AuditCreate, rotation.AuditSet, rotation.AuditTest, rotation.AuditFinish, rotation.AuditInstall, rotation.AuditTrust, rotation.AuditUpdate} {
		if !testkit.Has(evs, want, audit.Succeeded) {
			t.Errorf("no %s succeeded event", want)
		}
	}
	if !testkit.Has(evs, rotation.AuditRequest, audit.Rejected) || !testkit.Has(evs, rotation.AuditCreate, audit.Rejected) {
		t.Errorf("the malformed samples were not audited as rejected: %v", testkit.Outcomes(evs))
	}
}

func TestRejectsWhatIsNotARotationRequest(t *testing.T) {
	f := newFixture(t, "")
	tests := []struct {
		name    string
		payload string
		step    string
	}{
		{name: "a JSON array", payload: `[1,2]`, step: "decode-event"},
		{name: "a string", payload: `"createSecret"`, step: "decode-event"},
		{name: "an EventBridge event", payload: `{"detail-type":"Secret Label Updated","detail":{}}`, step: rotation.AuditRequest},
		{name: "no step", payload: `{"SecretId":"x","ClientRequestToken":"0123456789abcdef0123456789abcdef"}`, step: rotation.AuditRequest},
		{name: "huge values (the audit event must still validate)", step: rotation.AuditRequest,
			payload: `{"Step":"` + strings.Repeat("s", 5000) + `","SecretId":"` + strings.Repeat("i", 5000) + `","ClientRequestToken":"` + strings.Repeat("t", 5000) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.invoke([]byte(tt.payload))
			if err == nil || !lambdaapp.IsRejection(err) {
				t.Fatalf("err = %v, want a rejection", err)
			}
			evs := testkit.AuditEvents(t, f.st, 0)
			if len(evs) != 1 || evs[0].Event.Step != tt.step || evs[0].Event.Outcome != audit.Rejected {
				t.Errorf("audit events %v, want one %s rejected", testkit.Outcomes(evs), tt.step)
			}
		})
	}
	var inv *trigger.InvalidError
	_, err := f.invoke([]byte(`[]`))
	if !errors.As(err, &inv) || strings.Contains(err.Error(), "[]") {
		t.Errorf("a malformed payload: err %v, want an InvalidError that does not echo the payload", err)
	}
	testkit.AuditEvents(t, f.st, 0)
}

// TestRotationKeepsStoredPolicies: a syncer rotation reconciles the source with the policy stored for
// it, like every other function. Before the function got its reconciler from the App, a rotation
// turned client authentication back on for a scope-all database whose stored policy turns it off,
// locking its application clients out until the next sweep.
func TestRotationKeepsStoredPolicies(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	if _, err := f.app.Store.PutDBPolicy(ctx, "east", 1, secretstore.DBPolicy{TLSScope: "all", ClientAuthentication: false}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.Sim.Cluster("east").MutateDB(1, func(c *simulator.DBConfig) {
		c.TLSMode, c.EnforceClientAuthentication = "enabled", "disabled" // as that policy left it
	}); err != nil {
		t.Fatal(err)
	}
	token := "5f1e2d3c-4b5a-4697-8877-665544332211"
	f.enableRotation("west", secretstore.Syncer, token)
	d, err := f.app.Store.Describe(ctx, f.app.Store.SecretName("west", secretstore.Syncer))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		payload, _ := json.Marshal(map[string]string{"Step": step, "SecretId": d.ARN, "ClientRequestToken": token})
		if _, err := f.invoke(payload); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if db := testkit.ReadDB(t, f.st, "east", 1); db.ClientAuth != "disabled" || db.TLSMode != "enabled" {
			t.Fatalf("after %s east/1 has client authentication %s, tls_mode %s: want the stored policy's disabled, enabled", step, db.ClientAuth, db.TLSMode)
		}
	}
	newCert, err := f.app.Store.Cert(ctx, "west", secretstore.Syncer, secretstore.StageCurrent)
	if err != nil {
		t.Fatal(err)
	}
	db := testkit.ReadDB(t, f.st, "east", 1)
	found := false
	for _, cc := range db.ClientCerts {
		found = found || certs.SameCert(cc.ClientCert, newCert.Certificate)
	}
	if !found {
		t.Error("east/1 does not trust west's new syncer certificate")
	}
	testkit.AuditEvents(t, f.st, 0)
}
