package reconcile

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// planFixture is a set of named certificates, so expectations read as names, not fingerprints.
type planFixture struct {
	byName map[string]testCert
	byFP   map[string]string
}

func newPlanFixture(t *testing.T) planFixture {
	t.Helper()
	now := testNow()
	f := planFixture{byName: map[string]testCert{}, byFP: map[string]string{}}
	add := func(name string, c testCert) {
		f.byName[name] = c
		f.byFP[c.FP] = name
	}
	add("westCur", syncerCert(t, "west.example.com"))
	add("westPend", newCert(t, certSpec{cn: "west.example.com", ou: "syncer", notBefore: now.Add(time.Hour)})) // issued "just now" with a skewed clock
	add("westPrev", syncerCert(t, "west.example.com"))
	add("westPrevExpired", newCert(t, certSpec{cn: "west.example.com", ou: "syncer", notBefore: now.AddDate(-2, 0, 0), notAfter: now.AddDate(-1, 0, 0)}))
	add("westOld", syncerCert(t, "west.example.com"))
	add("northCur", syncerCert(t, "north.example.com"))
	add("unmanagedA", newCert(t, certSpec{cn: "app-a.example.com", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	add("unmanagedB", newCert(t, certSpec{cn: "app-b.example.com", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	add("client1", newCert(t, certSpec{cn: "client-1.example.com", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	add("expired", newCert(t, certSpec{cn: "west.example.com", ou: "syncer", notBefore: now.AddDate(-2, 0, 0), notAfter: now.Add(-time.Second)}))
	add("serverOnly", newCert(t, certSpec{cn: "west.example.com", ou: "syncer", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))
	add("proxyCur", proxyCert(t, "east.example.com"))
	add("proxyOld", proxyCert(t, "east.example.com"))
	add("proxyExpired", newCert(t, certSpec{cn: "east.example.com", ou: "redisdb", notBefore: now.AddDate(-2, 0, 0), notAfter: now.AddDate(0, 0, -1)}))
	add("proxyClientOnly", newCert(t, certSpec{cn: "east.example.com", ou: "redisdb", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
	return f
}

func (f planFixture) pem(name string) string { return f.byName[name].PEM }
func (f planFixture) fp(name string) string  { return f.byName[name].FP }

func (f planFixture) list(names ...string) []reapi.ClientCert {
	out := []reapi.ClientCert{}
	for _, n := range names {
		out = append(out, reapi.ClientCert{ClientCert: f.pem(n)})
	}
	return out
}

// names turns a trust list back into certificate names ("?" for unknown text).
func (f planFixture) names(list []reapi.ClientCert) []string {
	out := []string{}
	for _, cc := range list {
		c, err := certs.ParseOne(cc.ClientCert)
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, f.byFP[c.Fingerprint])
	}
	return out
}

// sourceOutcome is what a source plan is judged by.
type sourceOutcome struct {
	TLSMode   string   // "" when not sent
	Enforce   string   // "" when not sent
	Trust     []string // nil when the list is not sent
	Warned    bool
	Rejection string // RejectError code
}

func TestPlanSource(t *testing.T) {
	f := newPlanFixture(t)
	managedAll := map[string]bool{}
	for _, n := range []string{"westCur", "westPend", "westPrev", "westPrevExpired", "westOld", "northCur"} {
		managedAll[f.fp(n)] = true
	}
	west := func(versions ...CertVersion) DestCluster {
		return DestCluster{Name: "west", Syncer: versions, Presented: f.pem("westCur")}
	}
	cur := func(name string) CertVersion { return version("v-"+name, f.byName[name], StageCurrent) }
	converged := reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westCur")}

	tests := []struct {
		name string
		in   SourceInput
		want sourceOutcome
	}{
		{
			name: "a fresh link in scope replica gets replica_ssl, client authentication and the destination's syncer certificate",
			in:   SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSDisabled}, Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{TLSMode: "replica_ssl", Enforce: "enabled", Trust: []string{"westCur"}},
		},
		{
			name: "a fresh link in scope all gets tls enabled and trusts client certificates after syncer certificates",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSDisabled}, Policy: Policy{Scope: ScopeAll, ClientAuth: true},
				Destinations: []DestCluster{west(cur("westCur"))}, ClientCerts: []string{f.pem("client1")}},
			want: sourceOutcome{TLSMode: "enabled", Enforce: "enabled", Trust: []string{"westCur", "client1"}},
		},
		{
			name: "client certificates are ignored in scope replica",
			in:   SourceInput{DB: converged, Destinations: []DestCluster{west(cur("westCur"))}, ClientCerts: []string{f.pem("client1")}},
			want: sourceOutcome{},
		},
		{
			name: "an already converged source needs no update",
			in:   SourceInput{DB: converged, Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll},
			want: sourceOutcome{},
		},
		{
			name: "tls enabled is never downgraded to replica_ssl",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSEnabled, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westCur")},
				Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{},
		},
		{
			name: "an unknown tls_mode is left alone",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: "strict_future_mode", EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westCur")},
				Policy: Policy{Scope: ScopeAll, ClientAuth: true}, Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{},
		},
		{
			name: "scope all upgrades replica_ssl to enabled",
			in:   SourceInput{DB: converged, Policy: Policy{Scope: ScopeAll, ClientAuth: true}, Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{TLSMode: "enabled"},
		},
		{
			name: "a policy with client authentication off disables it and warns",
			in:   SourceInput{DB: converged, Policy: Policy{Scope: ScopeReplica, ClientAuth: false}, Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{Enforce: "disabled", Warned: true},
		},
		{
			name: "certificates this project does not manage survive in their order and new ones are appended",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("unmanagedA", "unmanagedB")},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll},
			want: sourceOutcome{Trust: []string{"unmanagedA", "unmanagedB", "westCur"}},
		},
		{
			name: "a managed certificate no destination needs is dropped",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("unmanagedA", "northCur", "westOld", "westCur")},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll, Policy: sweepPolicy()},
			want: sourceOutcome{Trust: []string{"unmanagedA", "westCur"}},
		},
		{
			name: "an event-driven run (no Prune) keeps a managed certificate no destination it read needs",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("unmanagedA", "northCur", "westOld", "westCur")},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll},
			want: sourceOutcome{},
		},
		{
			name: "a managed certificate a destination cluster still presents is kept",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westOld")},
				Destinations: []DestCluster{{Name: "west", Syncer: []CertVersion{cur("westCur")}, Presented: f.pem("westOld")}}, Managed: managedAll},
			want: sourceOutcome{Trust: []string{"westOld", "westCur"}},
		},
		{
			name: "pending and previous syncer certificates are trusted after the current one",
			in: SourceInput{DB: converged, Managed: managedAll, Destinations: []DestCluster{west(
				version("v3", f.byName["westPend"], StagePending), cur("westCur"), version("v1", f.byName["westPrev"], StagePrevious))}},
			want: sourceOutcome{Trust: []string{"westCur", "westPend", "westPrev"}},
		},
		{
			name: "a prunable previous certificate is dropped",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westPrev", "westCur")},
				Managed: managedAll, Prunable: map[string]bool{f.fp("westPrev"): true}, Policy: sweepPolicy(),
				Destinations: []DestCluster{west(cur("westCur"), version("v1", f.byName["westPrev"], StagePrevious))}},
			want: sourceOutcome{Trust: []string{"westCur"}},
		},
		{
			name: "a prunable previous certificate the destination still presents is kept",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("westPrev", "westCur")},
				Managed: managedAll, Prunable: map[string]bool{f.fp("westPrev"): true},
				Destinations: []DestCluster{{Name: "west", Syncer: []CertVersion{cur("westCur"), version("v1", f.byName["westPrev"], StagePrevious)}, Presented: f.pem("westPrev")}}},
			want: sourceOutcome{},
		},
		{
			name: "an expired previous certificate is simply not added",
			in: SourceInput{DB: converged, Managed: managedAll,
				Destinations: []DestCluster{west(cur("westCur"), version("v1", f.byName["westPrevExpired"], StagePrevious))}},
			want: sourceOutcome{},
		},
		{
			name: "the same certificate with different whitespace is no change",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled,
				AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: reformat(f.pem("westCur"))}}},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll},
			want: sourceOutcome{},
		},
		{
			name: "duplicate fingerprints are removed, keeping the first occurrence",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled,
				AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: f.pem("unmanagedA")}, {ClientCert: f.pem("westCur")}, {ClientCert: reformat(f.pem("unmanagedA"))}}},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll, Policy: sweepPolicy()},
			want: sourceOutcome{Trust: []string{"unmanagedA", "westCur"}},
		},
		{
			name: "an event-driven run (no Prune) keeps a managed certificate no destination it read needs",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("unmanagedA", "northCur", "westOld", "westCur")},
				Destinations: []DestCluster{west(cur("westCur"))}, Managed: managedAll},
			want: sourceOutcome{},
		},
		{
			name: "syncer certificates of every destination cluster are trusted",
			in: SourceInput{DB: converged, Managed: managedAll, Destinations: []DestCluster{
				{Name: "north", Syncer: []CertVersion{cur("northCur")}, Presented: f.pem("northCur")}, west(cur("westCur"))}},
			want: sourceOutcome{Trust: []string{"westCur", "northCur"}},
		},
		{
			name: "a destination without a syncer secret has the certificate it presents trusted, with a warning",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{{Name: "west", Presented: f.pem("westCur")}}},
			want: sourceOutcome{TLSMode: "replica_ssl", Enforce: "enabled", Trust: []string{"westCur"}, Warned: true},
		},
		{
			name: "a private key in a syncer secret is rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(CertVersion{VersionID: "v", Stages: []string{StageCurrent}, Certificate: privateKeyPEM(t)})}},
			want: sourceOutcome{Rejection: CodePrivateKey},
		},
		{
			name: "a certificate and its key pasted together in a syncer secret are rejected as a private key",
			in: SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(cur("westCur"), CertVersion{VersionID: "v", Stages: []string{StagePending},
				Certificate: f.pem("westPend") + privateKeyPEM(t)})}},
			want: sourceOutcome{Rejection: CodePrivateKey},
		},
		{
			name: "an expired current syncer certificate is rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(cur("expired"))}},
			want: sourceOutcome{Rejection: CodeExpired},
		},
		{
			name: "a syncer certificate only good for serverAuth is rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(cur("serverOnly"))}},
			want: sourceOutcome{Rejection: CodeWrongUsage},
		},
		{
			name: "garbage in a syncer secret is rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(CertVersion{Stages: []string{StageCurrent}, Certificate: "not a certificate at all"})}},
			want: sourceOutcome{Rejection: CodeInvalidCertificate},
		},
		{
			name: "a certificate request in a syncer secret is rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(CertVersion{Stages: []string{StageCurrent}, Certificate: csrPEM(t)})}},
			want: sourceOutcome{Rejection: CodeInvalidCertificate},
		},
		{
			name: "two certificates in one syncer secret are rejected",
			in:   SourceInput{DB: reapi.DB{UID: 1}, Destinations: []DestCluster{west(CertVersion{Stages: []string{StageCurrent}, Certificate: f.pem("westCur") + f.pem("westOld")})}},
			want: sourceOutcome{Rejection: CodeInvalidCertificate},
		},
		{
			name: "an expired client certificate in scope all is rejected",
			in: SourceInput{DB: converged, Policy: Policy{Scope: ScopeAll, ClientAuth: true}, Destinations: []DestCluster{west(cur("westCur"))},
				ClientCerts: []string{f.pem("expired")}},
			want: sourceOutcome{Rejection: CodeExpired},
		},
		{
			name: "enforcing client authentication with an empty trust list is refused",
			in:   SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL}},
			want: sourceOutcome{Rejection: CodeEmptyTrustList},
		},
		{
			name: "dropping the last managed certificate while enforcing is refused",
			in: SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled, AuthenticationSSLClientCerts: f.list("northCur")},
				Managed: managedAll, Policy: sweepPolicy()},
			want: sourceOutcome{Rejection: CodeEmptyTrustList},
		},
		{
			name: "an empty trust list is accepted when policy turns client authentication off",
			in:   SourceInput{DB: reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL}, Policy: Policy{Scope: ScopeReplica}},
			want: sourceOutcome{Enforce: "", Warned: true},
		},
		{
			name: "a policy without a scope is refused",
			in:   SourceInput{DB: converged, Policy: Policy{ClientAuth: true}, Destinations: []DestCluster{west(cur("westCur"))}},
			want: sourceOutcome{Rejection: CodeInvalidPolicy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Policy == (Policy{}) {
				in.Policy = DefaultPolicy()
			}
			in.Cluster, in.Now = "east", testNow()
			before := cloneDB(in.DB)
			p, err := PlanSource(in)
			var got sourceOutcome
			if err != nil {
				var rej *RejectError
				if !errors.As(err, &rej) {
					t.Fatalf("PlanSource error %v is not a *RejectError", err)
				}
				got.Rejection = rej.Code
				if !p.Update.Empty() {
					t.Errorf("rejected plan carries an update: %+v", p.Update)
				}
				assertNoSecret(t, err.Error())
			} else {
				if p.Update.TLSMode != nil {
					got.TLSMode = string(*p.Update.TLSMode)
				}
				if p.Update.EnforceClientAuthentication != nil {
					got.Enforce = *p.Update.EnforceClientAuthentication
				}
				if p.Update.AuthenticationSSLClientCerts != nil {
					got.Trust = f.names(*p.Update.AuthenticationSSLClientCerts)
				}
				got.Warned = len(p.Warnings) > 0
				if p.Update.Empty() != (len(p.Changes) == 0) {
					t.Errorf("update empty = %v but changes = %q", p.Update.Empty(), p.Changes)
				}
				for _, c := range append(p.Changes, p.Warnings...) {
					if strings.Contains(c, "BEGIN") {
						t.Errorf("change or warning holds PEM: %q", c)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, in.DB); diff != "" {
				t.Errorf("PlanSource changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

// TestPlanSourceExistingTextKept: an existing entry is sent back exactly as it was, so that the only
// difference a PUT makes is the one planned.
func TestPlanSourceExistingTextKept(t *testing.T) {
	f := newPlanFixture(t)
	odd := reformat(f.pem("unmanagedA"))
	p, err := PlanSource(SourceInput{
		Cluster: "east", Now: testNow(), Policy: DefaultPolicy(),
		DB:           reapi.DB{UID: 1, AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: odd}}},
		Destinations: []DestCluster{{Name: "west", Syncer: []CertVersion{version("v", f.byName["westCur"], StageCurrent)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []reapi.ClientCert{{ClientCert: odd}, {ClientCert: f.pem("westCur")}}
	if diff := cmp.Diff(want, *p.Update.AuthenticationSSLClientCerts); diff != "" {
		t.Errorf("trust list (-want +got):\n%s", diff)
	}
	wantAfter := []string{f.fp("unmanagedA"), f.fp("westCur")}
	var gotAfter []string
	for _, s := range p.After.TrustedCerts {
		gotAfter = append(gotAfter, s.Fingerprint)
	}
	if diff := cmp.Diff(wantAfter, gotAfter); diff != "" {
		t.Errorf("after state fingerprints (-want +got):\n%s", diff)
	}
	if p.Before.TLSMode != "" || p.After.TLSMode != "replica_ssl" || p.After.ClientAuthentication != "enabled" {
		t.Errorf("before/after = %+v / %+v", p.Before, p.After)
	}
}

func TestPlanDestination(t *testing.T) {
	f := newPlanFixture(t)
	uri := "redis://admin:s3cr3t-pass@redis-12000.east.example.com:12000"
	extra := map[string]json.RawMessage{"compression": json.RawMessage(`3`), "future_field": json.RawMessage(`{"a":1}`)}
	other := reapi.ReplicaSource{UID: 7, URI: "redis://admin:other-pass@redis-13000.north.example.com:13000", Encryption: false, Extra: extra, Status: reapi.LinkInSync}
	entry := func(enc bool, server string) reapi.ReplicaSource {
		return reapi.ReplicaSource{UID: 9, URI: uri, Encryption: enc, ServerCert: server, ReplicationTLSSNI: "east", Extra: extra, Status: reapi.LinkSyncing}
	}
	proxy := version("p1", f.byName["proxyCur"], StageCurrent)

	tests := []struct {
		name      string
		db        reapi.DB
		entryUID  int
		entry     int
		proxy     CertVersion
		presented string
		want      *[]reapi.ReplicaSource // nil: no update
		warned    bool
		rejection string
	}{
		{
			name: "encryption off is turned on with the source's proxy certificate",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(false, "")}}, entryUID: 9, proxy: proxy,
			want: &[]reapi.ReplicaSource{entry(true, f.pem("proxyCur"))},
		},
		{
			name: "a wrong server certificate is replaced",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(true, f.pem("proxyOld"))}}, entryUID: 9, proxy: proxy,
			want: &[]reapi.ReplicaSource{entry(true, f.pem("proxyCur"))},
		},
		{
			name: "other entries and unknown fields are untouched and every uid is kept",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{other, entry(false, "")}}, entryUID: 9, proxy: proxy,
			want: &[]reapi.ReplicaSource{other, entry(true, f.pem("proxyCur"))},
		},
		{
			name: "an entry without uid is found by its index",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{other, {URI: uri}}}, entry: 1, proxy: proxy,
			want: &[]reapi.ReplicaSource{other, {URI: uri, Encryption: true, ServerCert: f.pem("proxyCur")}},
		},
		{
			name: "an entry already right is no change, whatever the whitespace of its certificate",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(true, reformat(f.pem("proxyCur")))}}, entryUID: 9, proxy: proxy,
		},
		{
			name: "a source presenting another proxy certificate than Secrets Manager's is warned about",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(true, f.pem("proxyCur"))}}, entryUID: 9, proxy: proxy,
			presented: f.pem("proxyOld"), warned: true,
		},
		{
			name: "an expired proxy certificate is rejected",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(false, "")}}, entryUID: 9,
			proxy: version("p", f.byName["proxyExpired"], StageCurrent), rejection: CodeExpired,
		},
		{
			name: "a proxy certificate not good for serverAuth is rejected",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(false, "")}}, entryUID: 9,
			proxy: version("p", f.byName["proxyClientOnly"], StageCurrent), rejection: CodeWrongUsage,
		},
		{
			name: "a private key in the proxy secret is rejected",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(false, "")}}, entryUID: 9,
			proxy: CertVersion{Stages: []string{StageCurrent}, Certificate: privateKeyPEM(t)}, rejection: CodePrivateKey,
		},
		{
			name: "an entry uid that is not there is rejected",
			db:   reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry(false, "")}}, entryUID: 4, proxy: proxy,
			rejection: CodeUnknownLink,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cloneDB(tt.db)
			p, err := PlanDestination(DestInput{Cluster: "west", DB: tt.db, Entry: tt.entry, EntryUID: tt.entryUID,
				SourceCluster: "east", Proxy: tt.proxy, Presented: tt.presented, Now: testNow()})
			if tt.rejection != "" {
				var rej *RejectError
				if !errors.As(err, &rej) || rej.Code != tt.rejection {
					t.Fatalf("error = %v, want a *RejectError %s", err, tt.rejection)
				}
				assertNoSecret(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.Update.ReplicaSources); diff != "" {
				t.Errorf("replica_sources update (-want +got):\n%s", diff)
			}
			if p.Update.TLSMode != nil || p.Update.AuthenticationSSLClientCerts != nil || p.Update.EnforceClientAuthentication != nil {
				t.Errorf("destination update touches source fields: %+v", p.Update)
			}
			if (len(p.Changes) > 0) != (tt.want != nil) {
				t.Errorf("changes %q with update %v", p.Changes, tt.want != nil)
			}
			if (len(p.Warnings) > 0) != tt.warned {
				t.Errorf("warnings = %q, want warned %v", p.Warnings, tt.warned)
			}
			for _, c := range p.Changes {
				if strings.Contains(c, "BEGIN") || strings.Contains(c, "s3cr3t") {
					t.Errorf("change holds secret or PEM: %q", c)
				}
			}
			if p.After.Encryption == nil || !*p.After.Encryption || p.After.ServerCert == nil || p.After.ServerCert.Fingerprint != f.fp("proxyCur") {
				t.Errorf("after state = %+v", p.After)
			}
			if diff := cmp.Diff(before, tt.db); diff != "" {
				t.Errorf("PlanDestination changed its input:\n%s", diff)
			}
		})
	}
}

// TestPlanDestinationBody checks the PUT body: every entry goes back with its uid and unknown
// fields, and read-only status is not sent.
func TestPlanDestinationBody(t *testing.T) {
	f := newPlanFixture(t)
	raw := `{"uid":1,"replica_sources":[
	  {"uid":3,"uri":"redis://admin:pw1@a.north.example.com:14000","encryption":true,"compression":2,"status":"in-sync","lag":4},
	  {"uid":5,"uri":"redis://admin:pw2@redis-12000.east.example.com:12000","encryption":false,"compression":0,"status":"out-of-sync","last_error":"tls"}]}`
	var db reapi.DB
	if err := json.Unmarshal([]byte(raw), &db); err != nil {
		t.Fatal(err)
	}
	p, err := PlanDestination(DestInput{Cluster: "west", DB: db, EntryUID: 5, SourceCluster: "east",
		Proxy: version("p", f.byName["proxyCur"], StageCurrent), Now: testNow()})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(p.Update)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ReplicaSources []map[string]any `json:"replica_sources"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"uid": 3.0, "uri": "redis://admin:pw1@a.north.example.com:14000", "encryption": true, "compression": 2.0},
		{"uid": 5.0, "uri": "redis://admin:pw2@redis-12000.east.example.com:12000", "encryption": true, "compression": 0.0, "server_cert": f.pem("proxyCur")},
	}
	if diff := cmp.Diff(want, got.ReplicaSources); diff != "" {
		t.Errorf("PUT body replica_sources (-want +got):\n%s", diff)
	}
}

// assertNoSecret fails when text holds a private key, a known test password or URI credentials.
func assertNoSecret(t *testing.T, text string) {
	t.Helper()
	text = strings.ReplaceAll(text, "://admin:[redacted]@", "") // the redactor keeps the user
	for _, bad := range []string{"PRIVATE KEY", "BEGIN", "s3cr3t-pass", "other-pass", "://admin:", "://user:pass@"} {
		if strings.Contains(text, bad) {
			t.Errorf("text holds %q: %s", bad, text)
		}
	}
}
