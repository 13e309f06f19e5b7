package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSampleEvents decodes every secret-* sample: the valid ones name a certificate secret under the
// default prefix; the malformed-* ones are refused, by the decoder or because of the secret they name.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/secret-*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the secret-* samples in events/, found %d (%v)", len(files), err)
	}
	store := secretstore.New(nil, secretstore.Options{Prefix: secretstore.DefaultPrefix})
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			env, err := trigger.ParseEnvelope(sample(t, name))
			var c change
			if err == nil {
				c, err = decodeChange(env)
			}
			ok := false
			if err == nil {
				_, what, known := store.ParseSecretName(c.Secret)
				ok = known && (what == "syncer" || what == "proxy")
			}
			if malformed := strings.HasPrefix(name, "secret-malformed-"); ok == malformed {
				t.Errorf("accepted: %v (err %v), but the file is named %s", ok, err, name)
			}
		})
	}
}

type fixture struct {
	t    *testing.T
	st   *localstack.Stack
	app  *lambdaapp.App
	logs *bytes.Buffer
	h    *handler
}

// newFixture is the demo world with its link secured and its certificates recorded, as registration
// leaves it; the simulator re-checks links on every read, so a broken trust shows at once.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testkit.NewStack(t, motoURL, testkit.Options{Sim: simulator.Options{ReconnectOnRead: true}})
	logs := &bytes.Buffer{}
	cfg := testkit.AppConfig(st)
	awsCfg := st.AWS.Copy()
	awsCfg.RetryMaxAttempts = 3 // moto now and then drops a connection mid-answer
	app := lambdaapp.New(cfg, awsCfg, logs)
	f := &fixture{t: t, st: st, app: app, logs: logs, h: &handler{app: app}}
	f.recordAndSecure()
	testkit.AuditEvents(t, st, 0)
	return f
}

// recordAndSecure is what replica-tls does when it looks at the clusters (registration, the sweep):
// store presented certificates Secrets Manager lacks, and converge the demo link.
func (f *fixture) recordAndSecure() {
	f.t.Helper()
	ctx := context.Background()
	rec := f.app.Run("test-setup", "", false)
	fleet, err := f.app.LoadFleet(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, warnings := f.app.RecordFleetCertificates(ctx, rec, fleet, false); len(warnings) > 0 {
		f.t.Fatal(warnings)
	}
	if _, err := f.app.Reconciler(rec).ReconcileLink(ctx, fleet, reconcile.LinkRef{DestCluster: "west", DestDB: 1}, reconcile.DefaultPolicy()); err != nil {
		f.t.Fatal(err)
	}
}

// labelEvent is the native event for a label moving on one of the stack's secrets.
func (f *fixture) labelEvent(secret, label string) []byte {
	return []byte(fmt.Sprintf(`{"version":"0","id":"evt-%d","detail-type":"Secret Label Updated","source":"aws.secretsmanager",
		"account":"123456789012","time":"2026-11-28T04:00:00Z","region":"us-east-1","resources":[],
		"detail":{"name":%q,"labelUpdated":%q,"versionId":"0f4a5b1e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"}}`, time.Now().UnixNano(), secret, label))
}

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

func (f *fixture) linkStatus() string {
	return testkit.ReadDB(f.t, f.st, "west", 1).ReplicaSources[0].Status
}

func fingerprint(t *testing.T, pemText string) string {
	t.Helper()
	c, err := certs.ParseOne(pemText)
	if err != nil {
		t.Fatal(err)
	}
	return c.Fingerprint
}

// TestCertificateReplacedOutsideReplicaTLS: an operator replaces a certificate with rladmin, which
// breaks the link; replica-tls records what the cluster presents as the new AWSCURRENT version, and the
// "Secret Label Updated" event that follows makes this function repair the link.
func TestCertificateReplacedOutsideReplicaTLS(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		kind    secretstore.Kind
		replace func(h *simulator.ClusterHandle, certPEM, keyPEM string) error
		// repaired checks that the other side now trusts fp.
		repaired func(f *fixture, fp string) bool
	}{
		{name: "syncer certificate of the destination", cluster: "west", kind: secretstore.Syncer,
			replace: (*simulator.ClusterHandle).SetSyncerCert,
			repaired: func(f *fixture, fp string) bool {
				var trusted []string
				for _, c := range testkit.ReadDB(f.t, f.st, "east", 1).ClientCerts {
					trusted = append(trusted, fingerprint(f.t, c.ClientCert))
				}
				return slices.Contains(trusted, fp)
			}},
		{name: "proxy certificate of the source", cluster: "east", kind: secretstore.Proxy,
			replace: (*simulator.ClusterHandle).SetProxyCert,
			repaired: func(f *fixture, fp string) bool {
				return fingerprint(f.t, testkit.ReadDB(f.t, f.st, "west", 1).ReplicaSources[0].ServerCert) == fp
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			kind := certs.KindSyncer
			if tt.kind == secretstore.Proxy {
				kind = certs.KindProxy
			}
			kp, err := certs.Generate(certs.Profile{FQDN: tt.cluster + ".redis.local", Kind: kind, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.replace(f.st.Sim.Cluster(tt.cluster), kp.CertPEM, kp.KeyPEM); err != nil {
				t.Fatal(err)
			}
			if s := f.linkStatus(); s != "out-of-sync" {
				t.Fatalf("after the replacement the link is %s: the test needs it broken", s)
			}
			// The sweep (or any run that looks at the clusters) records the new certificate...
			rec := f.app.Run("sweep", "", false)
			fleet, err := f.app.LoadFleet(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, warnings := f.app.RecordFleetCertificates(context.Background(), rec, fleet, false); len(warnings) > 0 {
				t.Fatal(warnings)
			}
			// ...and Secrets Manager announces the new AWSCURRENT version.
			secret := f.app.Store.SecretName(tt.cluster, tt.kind)
			testkit.AuditEvents(t, f.st, 0)
			resp, err := f.invoke(f.labelEvent(secret, secretstore.StageCurrent))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Outcome != string(audit.Succeeded) || resp.Writes == 0 || resp.Cluster != tt.cluster || resp.Kind != string(tt.kind) {
				t.Errorf("response %+v, want succeeded with writes on the links of %s", resp, tt.cluster)
			}
			if !tt.repaired(f, kp.Cert.Fingerprint) {
				t.Error("the other side of the link does not trust the new certificate")
			}
			if s := f.linkStatus(); s != "in-sync" {
				t.Errorf("after the reconcile the link is %s, want in-sync", s)
			}
			evs := testkit.AuditEvents(t, f.st, 0)
			if !testkit.Has(evs, step, audit.Succeeded) {
				t.Errorf("no %s succeeded event: %v", step, testkit.Outcomes(evs))
			}

			// The same event again (EventBridge delivers at least once) changes nothing.
			resp, err = f.invoke(f.labelEvent(secret, secretstore.StageCurrent))
			if err != nil || resp.Writes != 0 {
				t.Errorf("a duplicate event: %d writes (err %v), want none", resp.Writes, err)
			}
		})
	}
}

func TestEventsThatChangeNothing(t *testing.T) {
	f := newFixture(t)
	prefix := f.st.Prefix
	tests := []struct {
		name        string
		payload     []byte
		wantOutcome audit.Outcome
		wantStep    string // the audited step
	}{
		{name: "a custom label moved", payload: f.labelEvent(prefix+"clusters/west/syncer", "Reviewed"),
			wantOutcome: audit.Skipped, wantStep: step},
		{name: "the API secret changed", payload: f.labelEvent(prefix+"clusters/west/api", secretstore.StageCurrent),
			wantOutcome: audit.Skipped, wantStep: step},
		{name: "a secret outside the prefix", payload: f.labelEvent("other-app/db-password", secretstore.StageCurrent),
			wantOutcome: audit.Rejected, wantStep: "decode-event"},
		{name: "a cluster that is not registered", payload: f.labelEvent(prefix+"clusters/north/syncer", secretstore.StageCurrent),
			wantOutcome: audit.Rejected, wantStep: reconcile.StepResolve},
		{name: "a CloudTrail event", payload: sample(t, "secret-malformed-cloudtrail.json"),
			wantOutcome: audit.Rejected, wantStep: "decode-event"},
		{name: "a detail without a name", payload: []byte(`{"detail-type":"Secret Label Updated","source":"aws.secretsmanager","detail":{"labelUpdated":"AWSCURRENT"}}`),
			wantOutcome: audit.Rejected, wantStep: "decode-event"},
		{name: "from another source", payload: []byte(`{"detail-type":"Secret Label Updated","source":"someone","detail":{"name":"x","labelUpdated":"AWSCURRENT"}}`),
			wantOutcome: audit.Rejected, wantStep: "decode-event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west")
			resp, err := f.invoke(tt.payload)
			if (err != nil) != (tt.wantOutcome == audit.Rejected) {
				t.Fatalf("err = %v, want an error only for a rejection", err)
			}
			if err != nil && !lambdaapp.IsRejection(err) {
				t.Errorf("err = %v, want a rejection (bad input, not retried)", err)
			}
			if err == nil && resp.Outcome != string(tt.wantOutcome) {
				t.Errorf("outcome %s, want %s", resp.Outcome, tt.wantOutcome)
			}
			if after := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); after != before {
				t.Errorf("%d cluster writes, want none", after-before)
			}
			evs := testkit.AuditEvents(t, f.st, 0)
			if !testkit.Has(evs, tt.wantStep, tt.wantOutcome) {
				t.Errorf("audit events %v, want %s %s", testkit.Outcomes(evs), tt.wantStep, tt.wantOutcome)
			}
		})
	}
}
