package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/trigger"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

// fixture is one test's world: moto (shared), a simulator with the demo topology, the function.
type fixture struct {
	t    *testing.T
	st   *localstack.Stack
	logs *bytes.Buffer
	h    *handler
}

func newFixture(t *testing.T, opts testkit.Options) *fixture {
	t.Helper()
	st := testkit.NewStack(t, motoURL, opts)
	logs := &bytes.Buffer{}
	return &fixture{t: t, st: st, logs: logs, h: &handler{app: testkit.NewApp(st, logs)}}
}

// event builds a "Replica Database Created" envelope.
func event(detail string) json.RawMessage {
	return json.RawMessage(`{"version":"0","id":"evt-` + fmt.Sprint(time.Now().UnixNano()) +
		`","detail-type":"Replica Database Created","source":"test","time":"2026-11-28T04:00:00Z","resources":[],"detail":` + detail + `}`)
}

func (f *fixture) invoke(payload json.RawMessage) (response, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := f.h.handle(ctx, payload)
	// Whatever happened, nothing secret may have been logged or returned.
	out, _ := json.Marshal(resp)
	testkit.NoLeaks(f.t, f.st, "function logs", f.logs.String())
	testkit.NoLeaks(f.t, f.st, "function response", string(out))
	if err != nil {
		testkit.NoLeaks(f.t, f.st, "function error", err.Error())
	}
	return resp, err
}

func fingerprint(t *testing.T, pemText string) string {
	t.Helper()
	c, err := certs.ParseOne(pemText)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c.Fingerprint
}

func trusted(t *testing.T, db testkit.DB) []string {
	t.Helper()
	var fps []string
	for _, c := range db.ClientCerts {
		fps = append(fps, fingerprint(t, c.ClientCert))
	}
	return fps
}

// assertSecured checks both sides of east/1 -> west/1 and that the link is in sync.
func (f *fixture) assertSecured(wantMode string) {
	t := f.t
	t.Helper()
	src := testkit.ReadDB(t, f.st, "east", 1)
	dst := testkit.ReadDB(t, f.st, "west", 1)
	westSyncer, _ := f.st.Sim.Cluster("west").SyncerCert()
	eastProxy, _ := f.st.Sim.Cluster("east").ProxyCert()
	if src.TLSMode != wantMode {
		t.Errorf("source tls_mode = %q, want %q", src.TLSMode, wantMode)
	}
	if src.ClientAuth != "enabled" {
		t.Errorf("source enforce_client_authentication = %q, want enabled", src.ClientAuth)
	}
	if !slices.Contains(trusted(t, src), fingerprint(t, westSyncer)) {
		t.Errorf("source does not trust the destination cluster's syncer certificate")
	}
	if len(dst.ReplicaSources) != 1 {
		t.Fatalf("destination has %d replica sources, want 1", len(dst.ReplicaSources))
	}
	rs := dst.ReplicaSources[0]
	if !rs.Encryption {
		t.Errorf("destination entry encryption is off")
	}
	if rs.ServerCert == "" || fingerprint(t, rs.ServerCert) != fingerprint(t, eastProxy) {
		t.Errorf("destination entry server_cert is not the source cluster's proxy certificate")
	}
	if rs.Status != "in-sync" || rs.LastError != "" {
		t.Errorf("link status = %q (last_error %q), want in-sync", rs.Status, rs.LastError)
	}
}

func TestSecuresNewLinkInBothScopes(t *testing.T) {
	tests := []struct {
		name     string
		detail   string
		wantMode string
	}{
		{"replica scope: TLS for replication only", `{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`, "replica_ssl"},
		{"all scope with the source named", `{"destination":{"cluster":"west","database":1},"source":{"cluster":"east","database":1},"tls_scope":"all"}`, "enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testkit.Options{})
			before := testkit.ReadDB(t, f.st, "west", 1)
			if before.ReplicaSources[0].Status != "in-sync" || before.ReplicaSources[0].Encryption {
				t.Fatalf("precondition: the demo link should start in sync and unencrypted: %+v", before.ReplicaSources[0])
			}
			resp, err := f.invoke(event(tt.detail))
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			f.assertSecured(tt.wantMode)
			if !resp.Changed || resp.Writes != 2 {
				t.Errorf("response: changed=%v writes=%d, want a write on each side", resp.Changed, resp.Writes)
			}
			if got := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); got != 2 {
				t.Errorf("clusters saw %d writes, want 2 (one PUT per side)", got)
			}
			evs := testkit.AuditEvents(t, f.st, 2*time.Second)
			for _, want := range []string{"reconcile-source:started", "reconcile-source:succeeded",
				"reconcile-destination:started", "reconcile-destination:succeeded"} {
				if !slices.Contains(testkit.Outcomes(evs), want) {
					t.Errorf("audit trail lacks %s: %v", want, testkit.Outcomes(evs))
				}
			}
			// The source side is secured before the destination (trust before use).
			if i, j := slices.Index(testkit.Outcomes(evs), "reconcile-source:succeeded"),
				slices.Index(testkit.Outcomes(evs), "reconcile-destination:started"); i < 0 || j < 0 || i > j {
				t.Errorf("source must succeed before the destination starts: %v", testkit.Outcomes(evs))
			}
		})
	}
}

func TestSecondIdenticalEventMakesNoMutatingCall(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	ev := event(`{"destination":{"cluster":"west","database":1}}`)
	if _, err := f.invoke(ev); err != nil {
		t.Fatalf("first run: %v", err)
	}
	firstCalls := testkit.Calls(f.st, "east") + testkit.Calls(f.st, "west")
	testkit.AuditEvents(t, f.st, 2*time.Second)
	f.st.Sim.Cluster("east").ResetCalls()
	f.st.Sim.Cluster("west").ResetCalls()

	resp, err := f.invoke(ev) // the very same event: a duplicate delivery
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 || resp.Writes != 0 || resp.Changed {
		t.Fatalf("second run made %d writes (response %d, changed %v), want none", w, resp.Writes, resp.Changed)
	}
	second := testkit.Calls(f.st, "east") + testkit.Calls(f.st, "west")
	t.Logf("cluster API calls: first run %d, repeated run %d", firstCalls, second)
	if second > 4 {
		t.Errorf("a converged link cost %d calls, want the snapshot reads only (2 per cluster)", second)
	}
	evs := testkit.AuditEvents(t, f.st, 2*time.Second)
	if !testkit.Has(evs, "reconcile-source", audit.Skipped) || !testkit.Has(evs, "reconcile-destination", audit.Skipped) {
		t.Errorf("second run should audit both sides as skipped: %v", testkit.Outcomes(evs))
	}
	f.assertSecured("replica_ssl")
}

func TestDryRunChangesNothingAndReportsThePlan(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	srcBefore, dstBefore := testkit.ReadDB(t, f.st, "east", 1), testkit.ReadDB(t, f.st, "west", 1)
	resp, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"dry_run":true}`))
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
		t.Fatalf("dry run made %d writes", w)
	}
	if srcAfter := testkit.ReadDB(t, f.st, "east", 1); srcAfter.TLSMode != srcBefore.TLSMode || len(srcAfter.ClientCerts) != len(srcBefore.ClientCerts) {
		t.Errorf("dry run changed the source: %+v -> %+v", srcBefore, srcAfter)
	}
	if dstAfter := testkit.ReadDB(t, f.st, "west", 1); dstAfter.ReplicaSources[0].Encryption != dstBefore.ReplicaSources[0].Encryption {
		t.Errorf("dry run changed the destination")
	}
	if len(resp.Links) != 1 || len(resp.Links[0].Changes) == 0 {
		t.Errorf("dry run should report the planned changes: %+v", resp.Links)
	}
	evs := testkit.AuditEvents(t, f.st, 2*time.Second)
	if !testkit.Has(evs, "reconcile-source", audit.Planned) || !testkit.Has(evs, "reconcile-destination", audit.Planned) {
		t.Errorf("dry run should audit both sides as planned: %v", testkit.Outcomes(evs))
	}
	for _, e := range evs {
		if !e.Event.DryRun {
			t.Errorf("event %s:%s is not flagged dry_run", e.Event.Step, e.Event.Outcome)
		}
	}
}

func TestForeignCertificatesSurviveAndEnabledIsNeverDowngraded(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	foreign, err := certs.Generate(certs.Profile{FQDN: "app.example.com", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	err = f.st.Sim.Cluster("east").MutateDB(1, func(c *simulator.DBConfig) {
		c.TLSMode = "enabled"
		c.AuthenticationSSLClientCerts = []string{foreign.CertPEM}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`)); err != nil {
		t.Fatalf("handler: %v", err)
	}
	src := testkit.ReadDB(t, f.st, "east", 1)
	if src.TLSMode != "enabled" {
		t.Errorf("tls_mode downgraded from enabled to %q", src.TLSMode)
	}
	got := trusted(t, src)
	if len(got) == 0 || got[0] != foreign.Cert.Fingerprint {
		t.Errorf("the certificate replica-tls did not add must stay first in the list: %v", got)
	}
	f.assertSecured("enabled")
}

func TestBadInputIsRejectedAndChangesNothing(t *testing.T) {
	expired := func(f *fixture) {
		// The cluster presents a syncer certificate that has expired since it was installed: it is
		// recorded as what the cluster presents, and must not be trusted.
		kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer,
			NotBefore: time.Now().Add(-time.Hour), Validity: time.Hour + 2*time.Second, KeyType: certs.ECDSAP256})
		if err != nil {
			f.t.Fatal(err)
		}
		plant(f, "west", "syncer", kp)
		time.Sleep(time.Until(kp.Cert.X509.NotAfter.Add(1100 * time.Millisecond)))
	}
	serverOnly := func(f *fixture) { plant(f, "west", "syncer", serverAuthOnly(f.t, "west.redis.local")) }
	keyAsCert := func(f *fixture) {
		kp, err := certs.Generate(certs.Profile{FQDN: "east.redis.local", Kind: certs.KindProxy, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
		if err != nil {
			f.t.Fatal(err)
		}
		rawSecret(f, "clusters/east/proxy", `{"certificate":`+quote(kp.KeyPEM)+`}`)
	}
	garbage := func(f *fixture) {
		rawSecret(f, "clusters/east/proxy", `{"certificate":"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"}`)
	}
	tests := []struct {
		name    string
		payload json.RawMessage
		setup   func(*fixture)
		step    string
		code    string
	}{
		{name: "unknown destination cluster", payload: event(`{"destination":{"cluster":"nowhere","database":1}}`), step: "resolve-link", code: reconcile.CodeUnknownCluster},
		{name: "unknown destination database", payload: event(`{"destination":{"cluster":"west","database":42}}`), step: "resolve-link", code: reconcile.CodeUnknownDatabase},
		{name: "malformed event", payload: json.RawMessage(`{"detail-type":"Replica Database Created","detail":{"destination":{"cluster":"west"}}}`), step: "decode-event", code: "invalid_event"},
		{name: "not JSON", payload: json.RawMessage(`"west/1"`), step: "decode-event", code: "invalid_event"},
		{name: "expired syncer certificate", payload: event(`{"destination":{"cluster":"west","database":1}}`), setup: expired, code: reconcile.CodeExpired},
		{name: "wrong-purpose syncer certificate", payload: event(`{"destination":{"cluster":"west","database":1}}`), setup: serverOnly, code: reconcile.CodeWrongUsage},
		{name: "private key stored as the proxy certificate", payload: event(`{"destination":{"cluster":"west","database":1}}`), setup: keyAsCert, code: reconcile.CodePrivateKey},
		{name: "malformed proxy certificate", payload: event(`{"destination":{"cluster":"west","database":1}}`), setup: garbage, code: reconcile.CodeInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testkit.Options{})
			if tt.setup != nil {
				tt.setup(f)
			}
			srcBefore, dstBefore := testkit.ReadDB(t, f.st, "east", 1), testkit.ReadDB(t, f.st, "west", 1)
			_, err := f.invoke(tt.payload)
			if err == nil {
				t.Fatal("want an error")
			}
			if !lambdaapp.IsRejection(err) {
				t.Errorf("want a rejection, got %v", err)
			}
			if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
				t.Errorf("%d writes on the clusters, want none", w)
			}
			srcAfter, dstAfter := testkit.ReadDB(t, f.st, "east", 1), testkit.ReadDB(t, f.st, "west", 1)
			if srcAfter.TLSMode != srcBefore.TLSMode || dstAfter.ReplicaSources[0].Encryption != dstBefore.ReplicaSources[0].Encryption {
				t.Errorf("state changed")
			}
			if tt.setup == nil { // bad events: nothing recorded in Secrets Manager either
				for _, c := range []string{"east", "west"} {
					if vs, err := f.st.Store.CertVersions(context.Background(), c, secretstore.Syncer); !errors.Is(err, secretstore.ErrNotFound) {
						t.Errorf("a rejected event recorded %s's syncer certificate (%d versions, %v)", c, len(vs), err)
					}
				}
			}
			evs := testkit.AuditEvents(t, f.st, 2*time.Second)
			var rejected []audit.Event
			for _, e := range evs {
				if e.Event.Outcome == audit.Rejected {
					rejected = append(rejected, e.Event)
				}
				if e.Event.Outcome == audit.Started && strings.HasPrefix(e.Event.Step, "reconcile-") {
					t.Errorf("no change may start on a cluster on bad input: %v", testkit.Outcomes(evs))
				}
			}
			if len(rejected) == 0 {
				t.Fatalf("no rejected audit event: %v", testkit.Outcomes(evs))
			}
			r := rejected[len(rejected)-1]
			if tt.step != "" && r.Step != tt.step {
				t.Errorf("rejected step = %q, want %q", r.Step, tt.step)
			}
			if r.Error == nil || r.Error.Code != tt.code {
				t.Errorf("rejected code = %+v, want %q", r.Error, tt.code)
			}
			var rej *reconcile.RejectError
			if errors.As(err, &rej) && rej.Code != tt.code {
				t.Errorf("error code = %q, want %q", rej.Code, tt.code)
			}
		})
	}
}

func TestAuditFailureMeansNoMutatingCall(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	cfg := testkit.AppConfig(f.st)
	cfg.AuditBus = "no-such-bus"
	f.h = &handler{app: lambdaapp.New(cfg, f.st.AWS, f.logs)}
	_, err := f.invoke(event(`{"destination":{"cluster":"west","database":1}}`))
	if err == nil {
		t.Fatal("want an error when audit events cannot be published")
	}
	if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
		t.Fatalf("%d mutating calls although the started event was not accepted", w)
	}
}

func TestRidesOutConflictStormsAndTransientErrors(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	f.st.Sim.Cluster("east").FailNext("PUT /v1/bdbs/{uid}", 6, 409)
	f.st.Sim.Cluster("west").FailNext("PUT /v1/bdbs/{uid}", 3, 503)
	f.st.Sim.Cluster("west").FailNext("GET /v1/bdbs", 2, 500)
	if _, err := f.invoke(event(`{"destination":{"cluster":"west","database":1}}`)); err != nil {
		t.Fatalf("handler: %v", err)
	}
	f.assertSecured("replica_ssl")
	calls := f.st.Sim.Cluster("east").Calls()["PUT /v1/bdbs/{uid}"]
	if calls < 7 {
		t.Errorf("east saw %d PUTs, want the 6 refused ones retried", calls)
	}
}

func TestClientCertificatesInAllScope(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	app, err := certs.Generate(certs.Profile{FQDN: "app.example.com", Kind: certs.KindProxy, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	rawSecret(f, "databases/east/1/clients", `{"certificates":[`+quote(app.CertPEM)+`]}`)
	if _, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"tls_scope":"all"}`)); err != nil {
		t.Fatalf("handler: %v", err)
	}
	f.assertSecured("enabled")
	if !slices.Contains(trusted(t, testkit.ReadDB(t, f.st, "east", 1)), app.Cert.Fingerprint) {
		t.Errorf("the configured client certificate is not trusted in scope all")
	}
}

// plant makes a cluster present a certificate, as an operator replacing it in the UI would.
func plant(f *fixture, cluster, kind string, kp certs.KeyPair) {
	f.t.Helper()
	h := f.st.Sim.Cluster(cluster)
	var err error
	if kind == "syncer" {
		err = h.SetSyncerCert(kp.CertPEM, kp.KeyPEM)
	} else {
		err = h.SetProxyCert(kp.CertPEM, kp.KeyPEM)
	}
	if err != nil {
		f.t.Fatalf("plant %s certificate on %s: %v", kind, cluster, err)
	}
}

// serverAuthOnly makes a syncer-looking certificate whose extended key usage lacks clientAuth: a
// syncer cannot authenticate with it.
func serverAuthOnly(t *testing.T, fqdn string) certs.KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: fqdn, OrganizationalUnit: []string{"syncer"}},
		DNSNames:     []string{fqdn, "*." + fqdn},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certs.KeyPair{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
	}
}

func rawSecret(f *fixture, name, value string) {
	f.t.Helper()
	sm := secretsmanager.NewFromConfig(f.st.AWS)
	ctx := context.Background()
	id := f.st.Prefix + name
	_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(value)})
	if err != nil && strings.Contains(err.Error(), "ResourceExists") {
		_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
	}
	if err != nil {
		f.t.Fatalf("write secret %s: %v", name, err)
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestStatedPolicyIsRemembered(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	f.h.app.Config.AllowDowngrade = true // the stack allows client authentication off
	if _, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"tls_scope":"all","client_authentication":false}`)); err != nil {
		t.Fatalf("handler: %v", err)
	}
	p, ok, err := f.st.Store.DBPolicy(context.Background(), "east", 1)
	if err != nil || !ok || p.TLSScope != "all" || p.ClientAuthentication {
		t.Fatalf("stored policy of east/1 = %+v (found %v, %v), want scope all without client authentication", p, ok, err)
	}
	if src := testkit.ReadDB(t, f.st, "east", 1); src.TLSMode != "enabled" || src.ClientAuth == "enabled" {
		t.Errorf("source: tls_mode %q, client authentication %q", src.TLSMode, src.ClientAuth)
	}
	evs := testkit.AuditEvents(t, f.st, 2*time.Second)
	if !testkit.Has(evs, "record-policy", audit.Started) || !testkit.Has(evs, "record-policy", audit.Succeeded) {
		t.Errorf("storing the policy is not audited started, then succeeded: %v", testkit.Outcomes(evs))
	}
	for _, e := range evs {
		if e.Event.Step == "record-policy" && e.Event.Outcome == audit.Succeeded && e.Event.Details["sender_source"] != "test" {
			t.Errorf("the policy change does not name its sender: %v", e.Event.Details)
		}
	}
}

// TestUntrustedSendersAndDowngradesAreRefused: an event from a source the stack does not trust, or
// one stating a policy below the stack's defaults without the stack allowing it, is rejected and
// changes nothing, on the clusters or in Secrets Manager.
func TestUntrustedSendersAndDowngradesAreRefused(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		detail  string
		field   string
	}{
		{name: "a sender outside ALLOWED_EVENT_SOURCES", allowed: []string{"replica-tls.pipeline"},
			detail: `{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`, field: "source"},
		{name: "client authentication off, not allowed by the stack",
			detail: `{"destination":{"cluster":"west","database":1},"tls_scope":"all","client_authentication":false}`, field: "detail.client_authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testkit.Options{})
			f.h.app.Config.AllowedSources = tt.allowed
			_, err := f.invoke(event(tt.detail))
			var inv *trigger.InvalidError
			if !errors.As(err, &inv) || inv.Field != tt.field {
				t.Fatalf("err %v, want a rejection of %s", err, tt.field)
			}
			if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
				t.Errorf("%d cluster writes", w)
			}
			if _, ok, _ := f.st.Store.DBPolicy(context.Background(), "east", 1); ok {
				t.Error("a refused event stored a policy")
			}
			evs := testkit.AuditEvents(t, f.st, 2*time.Second)
			if !testkit.Has(evs, "decode-event", audit.Rejected) || len(evs) != 1 {
				t.Errorf("audit: %v, want one rejected event", testkit.Outcomes(evs))
			}
		})
	}
}
