package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// westLink is the demo link's destination: west/1, every source entry.
func westLink() LinkRef { return LinkRef{DestCluster: "west", DestDB: 1} }

// trustFPs lists the fingerprints of a DB's trust list.
func trustFPs(t *testing.T, db reapi.DB) []string {
	t.Helper()
	out := []string{}
	for _, cc := range db.AuthenticationSSLClientCerts {
		c, err := certs.ParseOne(cc.ClientCert)
		if err != nil {
			t.Fatalf("trust list holds an unparseable entry: %v", err)
		}
		out = append(out, c.Fingerprint)
	}
	return out
}

// indexOf is the position of the first trace line with prefix, or -1.
func indexOf(trace []string, prefix string) int {
	for i, s := range trace {
		if strings.HasPrefix(s, prefix) {
			return i
		}
	}
	return -1
}

func lastIndexOf(trace []string, prefix string) int {
	for i := len(trace) - 1; i >= 0; i-- {
		if strings.HasPrefix(trace[i], prefix) {
			return i
		}
	}
	return -1
}

func TestReconcileLinkConvergesAndIsIdempotent(t *testing.T) {
	tests := []struct {
		name      string
		pol       Policy
		wantMode  reapi.TLSMode
		withCient bool
	}{
		{name: "scope replica turns on replica_ssl and trusts the destination syncer", pol: DefaultPolicy(), wantMode: reapi.TLSReplicaSSL},
		{name: "scope all turns on tls for every connection and trusts client certificates too", pol: Policy{Scope: ScopeAll, ClientAuth: true}, wantMode: reapi.TLSEnabled, withCient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			client := newCert(t, certSpec{cn: "app.example.com"})
			w.certs.clients[LinkEnd{"east", 1}] = []string{client.PEM}
			ctx := context.Background()

			res, err := w.reconciler().ReconcileLink(ctx, w.load(t), westLink(), tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			east, west := w.clusters["east"].db(1), w.clusters["west"].db(1)
			wantTrust := []string{w.c["westSyncer"].FP}
			if tt.withCient {
				wantTrust = append(wantTrust, client.FP)
			}
			if diff := cmp.Diff(wantTrust, trustFPs(t, east)); diff != "" {
				t.Errorf("east/1 trust list (-want +got):\n%s", diff)
			}
			if east.TLSMode != tt.wantMode || east.EnforceClientAuthentication != reapi.Enabled {
				t.Errorf("east/1 tls_mode %q enforce %q", east.TLSMode, east.EnforceClientAuthentication)
			}
			e := west.ReplicaSources[0]
			if !e.Encryption || !certs.SameCert(e.ServerCert, w.c["eastProxy"].PEM) || e.UID != 1 || e.URI != eastURI {
				t.Errorf("west/1 entry = uid %d encryption %v same proxy %v", e.UID, e.Encryption, certs.SameCert(e.ServerCert, w.c["eastProxy"].PEM))
			}

			// Trust before use: every east write precedes every west write.
			trace := w.trace.get()
			if last, first := lastIndexOf(trace, "east PUT"), indexOf(trace, "west PUT"); last < 0 || first < 0 || last > first {
				t.Errorf("source not written before destination: %q", trace)
			}
			wantEvents := []string{
				"reconcile-source started east/1", "reconcile-source succeeded east/1",
				"reconcile-destination started west/1", "reconcile-destination succeeded west/1",
			}
			if diff := cmp.Diff(wantEvents, w.aud.outcomes()); diff != "" {
				t.Errorf("audit events (-want +got):\n%s", diff)
			}
			if res.Writes != 2 || len(res.Links) != 1 || res.Links[0].Status != reapi.LinkInSync {
				t.Errorf("result writes %d links %+v", res.Writes, res.Links)
			}
			got := res.Links[0]
			if got.Source.Outcome != audit.Succeeded || got.Destination.Outcome != audit.Succeeded || len(got.Source.Changes) == 0 || len(got.Destination.Changes) == 0 {
				t.Errorf("sides = %+v / %+v", got.Source, got.Destination)
			}
			if got.Destination.After.Encryption == nil || !*got.Destination.After.Encryption {
				t.Errorf("destination after = %+v", got.Destination.After)
			}

			// Invariant 4: the same trigger again makes no mutating call, and reads nothing but the snapshot.
			w.aud.reset()
			w.trace.reset()
			writes, dry := w.writes(), w.dryRuns()
			res, err = w.reconciler().ReconcileLink(ctx, w.load(t), westLink(), tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			if w.writes() != writes || w.dryRuns() != dry || res.Writes != 0 || res.Calls != 0 {
				t.Errorf("second run wrote: %d writes, %d dry runs, result %+v", w.writes()-writes, w.dryRuns()-dry, res)
			}
			if trace := w.trace.get(); len(trace) != 4 {
				t.Errorf("second run made %d cluster calls, want 4 (2 per cluster): %q", len(trace), trace)
			}
			wantEvents = []string{"reconcile-source skipped east/1", "reconcile-destination skipped west/1"}
			if diff := cmp.Diff(wantEvents, w.aud.outcomes()); diff != "" {
				t.Errorf("second run audit events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuditFailsClosed(t *testing.T) {
	tests := []struct {
		name           string
		refuse         string // step whose started event the auditor refuses
		wantEastWrites int
		wantWestWrites int
	}{
		{name: "a refused source started event means no call that could change anything, anywhere", refuse: StepSource},
		{name: "a refused destination started event leaves the destination untouched", refuse: StepDestination, wantEastWrites: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			w.aud.reject = func(e audit.Event) error {
				if e.Step == tt.refuse && e.Outcome == audit.Started {
					return errors.New("PutEvents: FailedEntryCount 1")
				}
				return nil
			}
			res, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), DefaultPolicy())
			if err == nil {
				t.Fatal("no error although the audit trail refused an event")
			}
			if got := w.clusters["east"].writes; got != tt.wantEastWrites {
				t.Errorf("east writes = %d, want %d", got, tt.wantEastWrites)
			}
			if got := w.clusters["west"].writes + w.clusters["west"].dryRuns; got != 0 {
				t.Errorf("west UpdateDB calls = %d, want 0", got)
			}
			if tt.refuse == StepSource {
				if got := w.clusters["east"].dryRuns; got != 0 {
					t.Errorf("east dry-run calls = %d, want 0", got)
				}
				if res.Links[0].Destination.Outcome != "" {
					t.Errorf("destination attempted after the source failed: %+v", res.Links[0].Destination)
				}
			}
			if !strings.Contains(err.Error(), "audit") {
				t.Errorf("error does not say the audit failed: %v", err)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	w := newWorld(t, false)
	pol := DefaultPolicy()
	pol.DryRun = true
	res, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), pol)
	if err != nil {
		t.Fatal(err)
	}
	if w.writes() != 0 || w.dryRuns() != 2 {
		t.Errorf("writes %d, dry runs %d; want 0 and 2", w.writes(), w.dryRuns())
	}
	want := []string{"reconcile-source planned east/1", "reconcile-destination planned west/1"}
	if diff := cmp.Diff(want, w.aud.outcomes()); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	for _, e := range w.aud.events {
		if !e.DryRun || len(e.Changes) == 0 || e.After == nil {
			t.Errorf("planned event without dry-run flag, changes or after state: %+v", e)
		}
	}
	if east := w.clusters["east"].db(1); east.TLSMode != reapi.TLSDisabled || len(east.AuthenticationSSLClientCerts) != 0 {
		t.Errorf("dry run changed east/1: %+v", east)
	}
	if res.Writes != 0 || res.Links[0].Source.Outcome != audit.Planned {
		t.Errorf("result = %+v", res)
	}
}

func TestVerifyFailure(t *testing.T) {
	tests := []struct {
		name       string
		apply      func(db *reapi.DB, upd reapi.DBUpdate)
		wantWrites int
	}{
		{
			name: "a cluster that accepts the update but keeps tls off fails after one round",
			apply: func(db *reapi.DB, upd reapi.DBUpdate) {
				upd.TLSMode = nil
				applyDBUpdate(db, upd)
			},
			wantWrites: 1,
		},
		{
			name:       "a cluster that never shows our certificate fails after three rounds",
			apply:      func(*reapi.DB, reapi.DBUpdate) {},
			wantWrites: maxRounds,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			w.clusters["east"].applyUpdate = tt.apply
			res, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), DefaultPolicy())
			if err == nil {
				t.Fatal("no error although the read-back never showed the desired state")
			}
			if w.clusters["east"].writes != tt.wantWrites || w.clusters["west"].writes != 0 {
				t.Errorf("writes east %d west %d, want %d and 0", w.clusters["east"].writes, w.clusters["west"].writes, tt.wantWrites)
			}
			want := []string{"reconcile-source started east/1", "reconcile-source failed east/1"}
			if diff := cmp.Diff(want, w.aud.outcomes()); diff != "" {
				t.Errorf("audit events (-want +got):\n%s", diff)
			}
			last := w.aud.events[len(w.aud.events)-1]
			if last.Error == nil || last.Error.Code != "verify_failed" {
				t.Errorf("failed event error = %+v, want code verify_failed", last.Error)
			}
			if res.Links[0].Source.Rounds != tt.wantWrites {
				t.Errorf("rounds = %d", res.Links[0].Source.Rounds)
			}
		})
	}
}

func TestConcurrentWriterKeepsBothWritersCertificates(t *testing.T) {
	w := newWorld(t, false)
	mine := newCert(t, certSpec{cn: "app-mine.example.com"})
	theirs := newCert(t, certSpec{cn: "app-theirs.example.com"})
	w.clusters["east"].dbs[0].AuthenticationSSLClientCerts = []reapi.ClientCert{{ClientCert: mine.PEM}}
	// Another writer read the list before our PUT and writes it back with its own addition, dropping
	// the syncer certificate we just added.
	w.clusters["east"].afterWrite = func(n int, db *reapi.DB) {
		if n == 1 {
			db.AuthenticationSSLClientCerts = []reapi.ClientCert{{ClientCert: mine.PEM}, {ClientCert: theirs.PEM}}
		}
	}
	res, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{mine.FP, theirs.FP, w.c["westSyncer"].FP}
	if diff := cmp.Diff(want, trustFPs(t, w.clusters["east"].db(1))); diff != "" {
		t.Errorf("east/1 trust list (-want +got):\n%s", diff)
	}
	if src := res.Links[0].Source; src.Outcome != audit.Succeeded || src.Rounds != 2 || src.Writes != 2 {
		t.Errorf("source side = outcome %s rounds %d writes %d", src.Outcome, src.Rounds, src.Writes)
	}
	wantEvents := []string{
		"reconcile-source started east/1", "reconcile-source succeeded east/1",
		"reconcile-destination started west/1", "reconcile-destination succeeded west/1",
	}
	if diff := cmp.Diff(wantEvents, w.aud.outcomes()); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, w *world)
		ref      LinkRef
		pol      Policy
		wantCode string
		wantStep string
	}{
		{name: "an unknown destination cluster is rejected", ref: LinkRef{DestCluster: "nowhere", DestDB: 1}, wantCode: CodeUnknownCluster, wantStep: StepResolve},
		{name: "an unknown destination database is rejected", ref: LinkRef{DestCluster: "west", DestDB: 42}, wantCode: CodeUnknownDatabase, wantStep: StepResolve},
		{name: "a database that is not a replica is rejected", ref: LinkRef{DestCluster: "east", DestDB: 1}, wantCode: CodeNotReplica, wantStep: StepResolve},
		{name: "a source the destination does not replicate from is rejected", ref: LinkRef{DestCluster: "west", DestDB: 1, SourceCluster: "east", SourceDB: 2}, wantCode: CodeUnknownLink, wantStep: StepResolve},
		{name: "a source cluster that is not registered is rejected", ref: LinkRef{DestCluster: "west", DestDB: 1, SourceCluster: "ghost"}, wantCode: CodeUnknownCluster, wantStep: StepResolve},
		{
			name: "a source endpoint under no registered cluster is rejected",
			setup: func(t *testing.T, w *world) {
				w.clusters["west"].dbs[0].ReplicaSources[0].URI = "redis://admin:s3cr3t-pass@redis-12000.elsewhere.example.org:12000"
			},
			ref: westLink(), wantCode: CodeUnknownCluster, wantStep: StepResolve,
		},
		{
			name: "a private key in the destination's syncer secret is rejected",
			setup: func(t *testing.T, w *world) {
				w.certs.syncer["west"] = []CertVersion{{VersionID: "v", Stages: []string{StageCurrent}, Certificate: privateKeyPEM(t)}}
			},
			ref: westLink(), wantCode: CodePrivateKey, wantStep: StepSource,
		},
		{
			name: "an expired proxy certificate of the source is rejected before the source is touched",
			setup: func(t *testing.T, w *world) {
				exp := newCert(t, certSpec{cn: "east.example.com", ou: "redisdb", notBefore: testNow().AddDate(-2, 0, 0), notAfter: testNow().AddDate(0, 0, -1)})
				w.certs.proxy["east"] = version("old", exp, StageCurrent)
			},
			ref: westLink(), wantCode: CodeExpired, wantStep: StepDestination,
		},
		{
			name:  "a source without a proxy certificate in Secrets Manager is rejected",
			setup: func(t *testing.T, w *world) { delete(w.certs.proxy, "east") },
			ref:   westLink(), wantCode: CodeNoCertificate, wantStep: StepDestination,
		},
		{name: "a policy with an unknown scope is rejected", ref: westLink(), pol: Policy{Scope: "everything", ClientAuth: true}, wantCode: CodeInvalidPolicy, wantStep: StepResolve},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			pol := tt.pol
			if pol == (Policy{}) {
				pol = DefaultPolicy()
			}
			_, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), tt.ref, pol)
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Code != tt.wantCode {
				t.Fatalf("error = %v, want a *RejectError %s", err, tt.wantCode)
			}
			if w.writes() != 0 || w.dryRuns() != 0 {
				t.Errorf("%d writes and %d dry runs after a rejection", w.writes(), w.dryRuns())
			}
			if len(w.aud.events) != 1 {
				t.Fatalf("events = %q, want exactly one", w.aud.outcomes())
			}
			e := w.aud.events[0]
			if e.Outcome != audit.Rejected || e.Step != tt.wantStep || e.Error == nil || e.Error.Code != tt.wantCode {
				t.Errorf("event = %s %s %+v, want rejected at %s with %s", e.Step, e.Outcome, e.Error, tt.wantStep, tt.wantCode)
			}
			body, _ := json.Marshal(e)
			assertNoSecret(t, string(body))
			assertNoSecret(t, err.Error())
		})
	}
}

// TestNoSecretMaterialLeaks drives the failure paths whose text comes from outside (cluster errors,
// link errors) and scans every event, every error and the result.
func TestNoSecretMaterialLeaks(t *testing.T) {
	w := newWorld(t, false)
	key := privateKeyPEM(t)
	w.clusters["west"].dbs[0].ReplicaSources[0].LastError = "auth failed for " + eastURI
	// A cluster error that echoes its input: the entry's uri and a key.
	w.clusters["west"].updateErr = func(int, bool) error {
		return &reapi.Error{Method: "PUT", Path: "/v1/bdbs/1", StatusCode: 400, Code: "invalid_certificate",
			Message: "bad entry " + eastURI + " with key " + key}
	}
	res, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), DefaultPolicy())
	if err == nil {
		t.Fatal("no error although the destination update failed")
	}
	var apiErr *reapi.Error
	if !errors.As(err, &apiErr) || apiErr.Code != "invalid_certificate" {
		t.Errorf("error %v does not wrap the API error", err)
	}
	assertNoSecret(t, err.Error())
	assertNoSecret(t, res.Links[0].LastError)
	if res.Links[0].Destination.Outcome != audit.Failed {
		t.Errorf("destination outcome = %s", res.Links[0].Destination.Outcome)
	}
	for _, e := range w.aud.events {
		body, _ := json.Marshal(e)
		assertNoSecret(t, string(body))
	}
	last := w.aud.events[len(w.aud.events)-1]
	if last.Outcome != audit.Failed || last.Error == nil || last.Error.Code != "invalid_certificate" {
		t.Errorf("last event = %s %+v", last.Outcome, last.Error)
	}
}

func TestSharedSourcePlannedOnceForAllDestinations(t *testing.T) {
	w := newWorld(t, true)
	res, err := w.reconciler().ReconcileCluster(context.Background(), w.load(t), "east", DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if got := w.clusters["east"].writes; got != 1 {
		t.Errorf("east writes = %d, want 1", got)
	}
	want := []string{w.c["northSyncer"].FP, w.c["westSyncer"].FP}
	if diff := cmp.Diff(want, trustFPs(t, w.clusters["east"].db(1))); diff != "" {
		t.Errorf("east/1 trust list (-want +got):\n%s", diff)
	}
	for _, n := range []string{"north", "west"} {
		if got := w.clusters[n].writes; got != 1 {
			t.Errorf("%s writes = %d, want 1", n, got)
		}
	}
	wantEvents := []string{
		"reconcile-source started east/1", "reconcile-source succeeded east/1",
		"reconcile-destination started north/1", "reconcile-destination succeeded north/1",
		"reconcile-destination started west/1", "reconcile-destination succeeded west/1",
	}
	if diff := cmp.Diff(wantEvents, w.aud.outcomes()); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	if len(res.Links) != 2 || res.Links[0].SharedSource || !res.Links[1].SharedSource || res.Writes != 3 {
		t.Errorf("result = %+v", res)
	}
}

func TestReconcileClusterGoesOnPastFailures(t *testing.T) {
	w := newWorld(t, false)
	w.clusters["west"].dbs = append(w.clusters["west"].dbs, reapi.DB{UID: 2, Name: "stray",
		ReplicaSources: []reapi.ReplicaSource{{UID: 1, URI: "redis://admin:s3cr3t-pass@db.elsewhere.example.org:12000"}}})
	res, err := w.reconciler().ReconcileCluster(context.Background(), w.load(t), "west", DefaultPolicy())
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Code != CodeUnknownCluster {
		t.Fatalf("error = %v, want the stray link's rejection", err)
	}
	assertNoSecret(t, err.Error())
	if w.clusters["east"].writes != 1 || w.clusters["west"].writes != 1 {
		t.Errorf("writes east %d west %d, want the good link converged", w.clusters["east"].writes, w.clusters["west"].writes)
	}
	// Every link is planned before any is applied, so the rejection comes first.
	want := []string{
		"resolve-link rejected west/2",
		"reconcile-source started east/1", "reconcile-source succeeded east/1",
		"reconcile-destination started west/1", "reconcile-destination succeeded west/1",
	}
	if diff := cmp.Diff(want, w.aud.outcomes()); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	if len(res.Links) != 2 || res.Links[1].Err == nil || res.Links[0].Err != nil {
		t.Errorf("links = %+v", res.Links)
	}

	if _, err := w.reconciler().ReconcileCluster(context.Background(), w.load(t), "ghost", DefaultPolicy()); !errors.As(err, &rej) || rej.Code != CodeUnknownCluster {
		t.Errorf("unknown cluster: error = %v", err)
	}
}

func TestManagedCertificates(t *testing.T) {
	tests := []struct {
		name     string
		northBad bool // north hosts a link that cannot be resolved
		wantKept bool
	}{
		{name: "a registered cluster's syncer certificate is dropped from a source it does not replicate", wantKept: false},
		{name: "it is kept while that cluster has a link we cannot resolve, which might be to this source", northBad: true, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, true)
			w.clusters["north"].dbs = nil
			if tt.northBad {
				w.clusters["north"].dbs = []reapi.DB{{UID: 3, ReplicaSources: []reapi.ReplicaSource{{UID: 1, URI: "redis://admin:x@east.example.com:1"}}}}
			}
			w.clusters["east"].dbs[0].AuthenticationSSLClientCerts = []reapi.ClientCert{{ClientCert: w.c["northSyncer"].PEM}}
			_, err := w.reconciler().ReconcileLink(context.Background(), w.load(t), westLink(), sweepPolicy())
			if err != nil {
				t.Fatal(err)
			}
			want := []string{w.c["westSyncer"].FP}
			if tt.wantKept {
				want = []string{w.c["northSyncer"].FP, w.c["westSyncer"].FP}
			}
			if diff := cmp.Diff(want, trustFPs(t, w.clusters["east"].db(1))); diff != "" {
				t.Errorf("east/1 trust list (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a uri's password is removed, its user and host kept", "dial redis://admin:p@ss/w0rd@host:12000 failed", "dial redis://admin:[redacted]@host:12000 failed"},
		{"a uri without credentials is kept", "GET https://east.example.com:9443/v1/bdbs", "GET https://east.example.com:9443/v1/bdbs"},
		{"a private key is removed", "bad -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- here", "bad [private key] here"},
		{"a truncated private key is removed to the end", "bad -----BEGIN PRIVATE KEY-----\nMIIE", "bad [private key]"},
		{"a certificate is public and kept", "bad -----BEGIN CERTIFICATE-----\nMIIE", "bad -----BEGIN CERTIFICATE-----\nMIIE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.in); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
