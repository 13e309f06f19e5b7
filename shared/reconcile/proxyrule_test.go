package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// The proxy rotation rule: a destination trusts the proxy certificate its source cluster presents
// when that is the AWSPENDING version of the proxy secret, else AWSCURRENT.

func TestPlanDestinationProxyRule(t *testing.T) {
	cur, pending, other := proxyCert(t, "east.example.com"), proxyCert(t, "east.example.com"), proxyCert(t, "east.example.com")
	expired := newCert(t, certSpec{cn: "east.example.com", ou: "redisdb", notBefore: testNow().AddDate(-2, 0, 0), notAfter: testNow().AddDate(-1, 0, 0)})
	db := reapi.DB{UID: 1, ReplicaSources: []reapi.ReplicaSource{{UID: 1, URI: eastURI, Encryption: true, ServerCert: cur.PEM}}}
	tests := []struct {
		name        string
		presented   string
		pending     string
		wantServer  string // fingerprint of the planned server_cert
		wantWarning bool
		wantReject  string
	}{
		{name: "presents AWSCURRENT: AWSCURRENT, nothing to change", presented: cur.PEM, pending: pending.PEM, wantServer: cur.FP},
		{name: "presents AWSPENDING during a rotation: AWSPENDING", presented: pending.PEM, pending: pending.PEM, wantServer: pending.FP},
		{name: "presents AWSPENDING with other whitespace: still AWSPENDING", presented: reformat(pending.PEM), pending: pending.PEM, wantServer: pending.FP},
		{name: "presents a certificate that is no staged version: AWSCURRENT, with a warning", presented: other.PEM, pending: pending.PEM, wantServer: cur.FP, wantWarning: true},
		{name: "presents AWSPENDING but none is known: AWSCURRENT, with a warning", presented: pending.PEM, wantServer: cur.FP, wantWarning: true},
		{name: "presented certificate unknown: AWSCURRENT", pending: pending.PEM, wantServer: cur.FP},
		{name: "presents an expired AWSPENDING: rejected, nothing planned", presented: expired.PEM, pending: expired.PEM, wantReject: CodeExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := DestInput{
				Cluster: "west", DB: db, EntryUID: 1, SourceCluster: "east", Now: testNow(),
				Proxy: version("p1", cur, StageCurrent), Presented: tt.presented,
			}
			if tt.pending != "" {
				in.ProxyPending = CertVersion{VersionID: "p2", Stages: []string{StagePending}, Certificate: tt.pending}
			}
			p, err := PlanDestination(in)
			if tt.wantReject != "" {
				var rej *RejectError
				if !errors.As(err, &rej) || rej.Code != tt.wantReject {
					t.Fatalf("err = %v, want a %s rejection", err, tt.wantReject)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			server := cur.PEM
			if p.Update.ReplicaSources != nil {
				server = (*p.Update.ReplicaSources)[0].ServerCert
			}
			c, err := certs.ParseOne(server)
			if err != nil {
				t.Fatal(err)
			}
			if c.Fingerprint != tt.wantServer {
				t.Errorf("planned server_cert sha256:%s, want sha256:%s", c.Fingerprint[:12], tt.wantServer[:12])
			}
			if got := len(p.Warnings) > 0; got != tt.wantWarning {
				t.Errorf("warnings %q, want any: %v", p.Warnings, tt.wantWarning)
			}
		})
	}
}

// pendingCerts is fakeCerts that also knows AWSPENDING proxy versions (ProxyPendingSource).
type pendingCerts struct {
	*fakeCerts
	pending map[string]CertVersion
	err     error
	asked   int
}

func (p *pendingCerts) ProxyPending(_ context.Context, cluster string) (CertVersion, error) {
	p.asked++
	if p.err != nil {
		return CertVersion{}, p.err
	}
	v, ok := p.pending[cluster]
	if !ok {
		return CertVersion{}, fmt.Errorf("no pending proxy of %s: %w", cluster, ErrNoCertificate)
	}
	return v, nil
}

func TestReconcileFollowsProxyRotation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		presents   string // "current", "pending"
		source     func(w *world, pc *pendingCerts) CertSource
		wantServer string // "current", "pending"
		wantAsked  int
		wantErr    string
	}{
		{name: "source presents AWSPENDING: the destination follows it", presents: "pending",
			source: func(_ *world, pc *pendingCerts) CertSource { return pc }, wantServer: "pending", wantAsked: 1},
		{name: "source presents AWSCURRENT: AWSPENDING is not even read", presents: "current",
			source: func(_ *world, pc *pendingCerts) CertSource { return pc }, wantServer: "current", wantAsked: 0},
		{name: "a CertSource that cannot tell AWSPENDING keeps AWSCURRENT", presents: "pending",
			source: func(w *world, _ *pendingCerts) CertSource { return w.certs }, wantServer: "current"},
		{name: "AWSPENDING unreadable: the link fails, nothing is written to the destination", presents: "pending",
			source:     func(_ *world, pc *pendingCerts) CertSource { pc.err = errors.New("throttled"); return pc },
			wantServer: "current", wantAsked: 1, wantErr: "read pending proxy certificate of east: throttled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, false)
			pending := proxyCert(t, "east.example.com")
			pc := &pendingCerts{fakeCerts: w.certs, pending: map[string]CertVersion{
				"east": {VersionID: "east-p2", Stages: []string{StagePending}, Certificate: pending.PEM, Created: testNow()},
			}}
			if tt.presents == "pending" {
				w.clusters["east"].proxy = pending.PEM
			}
			r := New(Config{Registry: w.reg, Certs: tt.source(w, pc), Auditor: w.aud, Now: testNow, Poll: time.Millisecond})
			_, err := r.ReconcileLink(ctx, w.load(t), westLink(), DefaultPolicy())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if w.clusters["west"].writes != 0 {
					t.Errorf("west written %d times although the link failed", w.clusters["west"].writes)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			want := w.c["eastProxy"].PEM
			if tt.wantServer == "pending" {
				want = pending.PEM
			}
			if got := w.clusters["west"].db(1).ReplicaSources[0].ServerCert; tt.wantErr == "" && !certs.SameCert(got, want) {
				t.Errorf("west/1 server_cert is not the %s proxy certificate", tt.wantServer)
			}
			if pc.asked != tt.wantAsked {
				t.Errorf("AWSPENDING read %d times, want %d", pc.asked, tt.wantAsked)
			}
		})
	}
}
