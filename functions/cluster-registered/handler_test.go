package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

func setup(t *testing.T) (*localstack.Stack, *handler, *bytes.Buffer) {
	t.Helper()
	st := testkit.NewStack(t, motoURL, testkit.Options{})
	logs := &bytes.Buffer{}
	return st, &handler{app: testkit.NewApp(st, logs)}, logs
}

func registered(cluster string, dryRun bool) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": "reg-" + cluster, "detail-type": "Cluster Registered", "source": "test",
		"time": "2026-11-28T04:00:00Z", "detail": map[string]any{"cluster": cluster, "dry_run": dryRun},
	})
	return b
}

func call(t *testing.T, h *handler, payload json.RawMessage) (response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return h.handle(ctx, payload)
}

func versions(t *testing.T, st *localstack.Stack, cluster string, kind secretstore.Kind) []secretstore.CertVersion {
	t.Helper()
	vs, err := st.Store.CertVersions(context.Background(), cluster, kind)
	if err != nil {
		t.Fatalf("read %s %s versions: %v", cluster, kind, err)
	}
	return vs
}

func TestRegistrationRecordsCertificatesOnceAndSecuresLinks(t *testing.T) {
	st, h, logs := setup(t)
	resp, err := call(t, h, registered("west", false))
	if err != nil {
		t.Fatalf("register west: %v", err)
	}
	for _, c := range []string{"east", "west"} {
		for _, k := range []secretstore.Kind{secretstore.Syncer, secretstore.Proxy} {
			vs := versions(t, st, c, k)
			if len(vs) != 1 || !vs[0].Has(secretstore.StageCurrent) || vs[0].HasKey {
				t.Errorf("%s %s: want one AWSCURRENT version without key, got %+v", c, k, vs)
			}
		}
	}
	westSyncer, _ := st.Sim.Cluster("west").SyncerCert()
	if vs := versions(t, st, "west", secretstore.Syncer); !certs.SameCert(vs[0].Certificate, westSyncer) {
		t.Errorf("stored west syncer certificate is not the one the cluster presents")
	}
	if db := testkit.ReadDB(t, st, "west", 1); !db.ReplicaSources[0].Encryption || db.ReplicaSources[0].Status != "in-sync" {
		t.Errorf("the link touching west should be secured: %+v", db.ReplicaSources[0])
	}
	if len(resp.Links) != 1 || resp.Links[0].Source != "succeeded" || resp.Links[0].Destination != "succeeded" {
		t.Errorf("response links: %+v", resp.Links)
	}
	testkit.AuditEvents(t, st, 2*time.Second)

	// Registering again records nothing new and changes nothing.
	st.Sim.Cluster("east").ResetCalls()
	st.Sim.Cluster("west").ResetCalls()
	resp, err = call(t, h, registered("west", false))
	if err != nil {
		t.Fatalf("register west again: %v", err)
	}
	for _, c := range resp.Certificates {
		if c.Outcome != string(audit.Skipped) {
			t.Errorf("second registration recorded %+v", c)
		}
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != 0 {
		t.Errorf("second registration made %d writes", w)
	}
	if n := len(versions(t, st, "west", secretstore.Syncer)); n != 1 {
		t.Errorf("west syncer secret has %d versions after a repeated registration, want 1", n)
	}
	testkit.AuditEvents(t, st, 2*time.Second)
	testkit.NoLeaks(t, st, "logs", logs.String())
}

func TestCertificateReplacedOutsideReplicaTLSIsRecordedAndTrusted(t *testing.T) {
	st, h, logs := setup(t)
	if _, err := call(t, h, registered("east", false)); err != nil {
		t.Fatalf("register: %v", err)
	}
	old, _ := st.Sim.Cluster("west").SyncerCert()
	// An operator replaces west's syncer certificate through the UI or rladmin, trust-first
	// ordering ignored: the source does not trust it yet.
	kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Sim.Cluster("west").SetSyncerCert(kp.CertPEM, kp.KeyPEM); err != nil {
		t.Fatal(err)
	}
	if rs := testkit.ReadDB(t, st, "west", 1).ReplicaSources[0]; rs.Status == "in-sync" {
		t.Fatalf("precondition: the link should break when the syncer presents an untrusted certificate")
	}
	if _, err := call(t, h, registered("west", false)); err != nil {
		t.Fatalf("re-register west: %v", err)
	}
	vs := versions(t, st, "west", secretstore.Syncer)
	if len(vs) != 2 || !certs.SameCert(vs[0].Certificate, kp.CertPEM) || !vs[0].Has(secretstore.StageCurrent) {
		t.Fatalf("the replacement should be the new AWSCURRENT: %+v", vs)
	}
	var fps []string
	for _, c := range testkit.ReadDB(t, st, "east", 1).ClientCerts {
		cc, err := certs.ParseOne(c.ClientCert)
		if err != nil {
			t.Fatal(err)
		}
		fps = append(fps, cc.Fingerprint)
	}
	oldC, _ := certs.ParseOne(old)
	if !slices.Contains(fps, kp.Cert.Fingerprint) || !slices.Contains(fps, oldC.Fingerprint) {
		t.Errorf("the source should trust the new certificate and keep the previous one until pruned: %v", fps)
	}
	// Changes on the source take effect for new connections: the syncer retries and gets in.
	if rs := testkit.ReadDB(t, st, "west", 1).ReplicaSources[0]; rs.Status != "in-sync" {
		t.Errorf("link should recover: %+v", rs)
	}
	testkit.AuditEvents(t, st, 2*time.Second)
	testkit.NoLeaks(t, st, "logs", logs.String())
}

func TestUnknownClusterAndDryRun(t *testing.T) {
	st, h, _ := setup(t)
	_, err := call(t, h, registered("north", false))
	if err == nil || !lambdaapp.IsRejection(err) {
		t.Fatalf("an unregistered cluster must be rejected, got %v", err)
	}
	evs := testkit.AuditEvents(t, st, 2*time.Second)
	if !testkit.Has(evs, "decode-event", audit.Rejected) {
		t.Errorf("want a rejected event: %v", testkit.Outcomes(evs))
	}

	resp, err := call(t, h, registered("east", true))
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, c := range resp.Certificates {
		if c.Outcome != string(audit.Planned) {
			t.Errorf("dry run must only plan: %+v", c)
		}
	}
	if _, err := st.Store.CertVersions(context.Background(), "east", secretstore.Syncer); err == nil {
		t.Errorf("dry run stored a certificate")
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != 0 {
		t.Errorf("dry run made %d writes", w)
	}
	if len(resp.Links) != 1 || len(resp.Links[0].Changes) == 0 {
		t.Errorf("dry run should report the link's planned changes: %+v", resp.Links)
	}
	testkit.AuditEvents(t, st, 2*time.Second)
}

// A policy an event stated for a source database (here: scope all, client authentication off) is
// kept by runs that state none, such as a registration: defaults never undo a deliberate choice.
func TestStoredPolicyWinsOverDefaults(t *testing.T) {
	st, h, _ := setup(t)
	if _, err := st.Store.PutDBPolicy(context.Background(), "east", 1, secretstore.DBPolicy{TLSScope: "all", ClientAuthentication: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, h, registered("west", false)); err != nil {
		t.Fatalf("register: %v", err)
	}
	src := testkit.ReadDB(t, st, "east", 1)
	if src.TLSMode != "enabled" || src.ClientAuth == "enabled" {
		t.Errorf("source follows the defaults instead of its stored policy: tls_mode %q, client authentication %q", src.TLSMode, src.ClientAuth)
	}
	if rs := testkit.ReadDB(t, st, "west", 1).ReplicaSources[0]; !rs.Encryption || rs.Status != "in-sync" {
		t.Errorf("the link should still be secured: %+v", rs)
	}
	testkit.AuditEvents(t, st, 2*time.Second)
}

// TestRegistrationPinsIdentityAndRefusesImpostors: registration pins the FQDN a cluster reports; a
// second registered cluster that reports the same name (its API secret points at east) is refused,
// audited as rejected, pinned to nothing, and changes nothing.
func TestRegistrationPinsIdentityAndRefusesImpostors(t *testing.T) {
	st, h, logs := setup(t)
	ctx := context.Background()
	if _, err := call(t, h, registered("east", false)); err != nil {
		t.Fatalf("register east: %v", err)
	}
	if pin, err := st.Store.PinnedFQDN(ctx, "east"); err != nil || pin != "east.redis.local" {
		t.Fatalf("east pinned to %q (%v), want east.redis.local", pin, err)
	}
	evs := testkit.AuditEvents(t, st, 2*time.Second)
	if !testkit.Has(evs, lambdaapp.StepPin, audit.Started) || !testkit.Has(evs, lambdaapp.StepPin, audit.Succeeded) {
		t.Errorf("pinning not audited started then succeeded: %v", testkit.Outcomes(evs))
	}

	east := st.Sim.Clusters()[0]
	if err := st.Store.PutClusterAPI(ctx, secretstore.ClusterAPI{Name: "imp", URL: east.URL, Username: east.AdminUser, Password: east.AdminPassword, CACert: east.APICertPEM}); err != nil {
		t.Fatal(err)
	}
	before := testkit.Writes(st, "east") + testkit.Writes(st, "west")
	_, err := call(t, h, registered("imp", false))
	if err == nil || !lambdaapp.IsRejection(err) {
		t.Fatalf("registering a cluster that reports east's name: %v, want a rejection", err)
	}
	evs = testkit.AuditEvents(t, st, 2*time.Second)
	var code string
	for _, e := range evs {
		if e.Event.Outcome == audit.Rejected && e.Event.Error != nil {
			code = e.Event.Error.Code
		}
	}
	if code != "identity_mismatch" {
		t.Errorf("rejection code %q, want identity_mismatch (%v)", code, testkit.Outcomes(evs))
	}
	if pin, err := st.Store.PinnedFQDN(ctx, "imp"); err != nil || pin != "" {
		t.Errorf("the impostor got pinned to %q (%v)", pin, err)
	}
	if w := testkit.Writes(st, "east") + testkit.Writes(st, "west"); w != before {
		t.Errorf("a refused registration made %d cluster writes", w-before)
	}

	// A pinned cluster that reports another name is refused too: its links do not resolve to it.
	if err := st.Store.PinFQDN(ctx, "east", "elsewhere.redis.local"); err != nil {
		t.Fatal(err)
	}
	if err := h.app.Registry.CheckIdentity(ctx, "east", "east.redis.local"); !lambdaapp.IsRejection(err) {
		t.Errorf("east pinned elsewhere but reporting east.redis.local: %v, want a rejection", err)
	}
	testkit.NoLeaks(t, st, "logs", logs.String())
}
