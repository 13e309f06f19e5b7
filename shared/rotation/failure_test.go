package rotation_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// refusing is an auditor that refuses the first event matching step and outcome, as an unavailable
// EventBridge would.
type refusing struct {
	next    rotation.Auditor
	step    string
	outcome audit.Outcome
	mu      *sync.Mutex
	done    *bool
}

func (a refusing) Record(ctx context.Context, e audit.Event) error {
	a.mu.Lock()
	if !*a.done && e.Step == a.step && e.Outcome == a.outcome {
		*a.done = true
		a.mu.Unlock()
		return errors.New("eventbridge unavailable")
	}
	a.mu.Unlock()
	return a.next.Record(ctx, e)
}

func TestSetSecretFailureThenRetry(t *testing.T) {
	tests := []struct {
		name string
		// inject makes the next setSecret fail part-way.
		inject func(e *env)
		// trusted: whether the source trusts the pending certificate after the failure.
		trusted bool
	}{
		{name: "the certificate update on the destination cluster fails after the source trusts it",
			inject: func(e *env) {
				e.st.Sim.Cluster("west").FailNext("PUT /v1/cluster/certificates", 1, http.StatusBadRequest)
			}, trusted: true},
		{name: "the source database update fails: nothing is installed",
			inject: func(e *env) { e.st.Sim.Cluster("east").FailNext("PUT /v1/bdbs/{uid}", 1, http.StatusBadRequest) }},
		{name: "the audit trail refuses the install's started event: nothing is installed",
			inject: func(e *env) {
				var mu sync.Mutex
				done := false
				e.auditor = func(next rotation.Auditor) rotation.Auditor {
					return refusing{next: next, step: rotation.AuditInstall, outcome: audit.Started, mu: &mu, done: &done}
				}
			}, trusted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
			e.enableRotation("west", secretstore.Syncer)
			oldVersion := versionWith(e.stages("west", secretstore.Syncer), secretstore.StageCurrent)
			oldFP := e.presented("west", secretstore.Syncer)
			arn := e.arn("west", secretstore.Syncer)
			token := e.startRotation("west", secretstore.Syncer)
			p := startProbe(t, e.st.Sim, "west", 1)

			e.mustStep(rotation.CreateSecret, arn, token)
			newFP := e.certOf("west", secretstore.Syncer, token)
			tt.inject(e)
			res, err := e.step(rotation.SetSecret, arn, token)
			if err == nil || res.Outcome != audit.Failed {
				t.Fatalf("setSecret with a failure injected: outcome %s, err %v; want failed", res.Outcome, err)
			}
			if e.presented("west", secretstore.Syncer) != oldFP {
				t.Fatal("west presents the new certificate although setSecret failed")
			}
			if got := slices.Contains(e.trusted("east", 1), newFP); got != tt.trusted {
				t.Errorf("east/1 trusts the pending certificate after the failure: %v, want %v", got, tt.trusted)
			}
			if !slices.Contains(e.trusted("east", 1), oldFP) {
				t.Error("east/1 lost the current certificate")
			}
			failed := false
			for _, ev := range e.events() {
				failed = failed || (ev.Step == rotation.AuditSet && ev.Outcome == audit.Failed && ev.Error != nil)
			}
			if !failed {
				t.Error("no rotation-set-secret failed event with an error")
			}

			e.auditor = nil
			for _, step := range allSteps[1:] {
				e.mustStep(step, arn, token)
			}
			p.assertNeverOutOfSync(t)
			e.checkRotated("west", secretstore.Syncer, token, oldVersion)
			if got := e.trusted("east", 1); !slices.Contains(got, oldFP) || !slices.Contains(got, newFP) {
				t.Errorf("a certificate was lost: east/1 trusts %d certificates, want the old and the new", len(got))
			}
		})
	}
}

func TestTestSecretFailsClearly(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
	e.testTimeout = 300 * time.Millisecond
	e.enableRotation("west", secretstore.Syncer)
	arn := e.arn("west", secretstore.Syncer)
	token := e.startRotation("west", secretstore.Syncer)
	e.mustStep(rotation.CreateSecret, arn, token)

	tests := []struct {
		name    string
		setup   func()
		want    []string
		outcome audit.Outcome
	}{
		{name: "before setSecret: the cluster does not present the new certificate",
			want:    []string{"west presents sha256:", "not the pending", "run setSecret first"},
			outcome: audit.Rejected},
		{name: "the source stopped trusting the new certificate: the broken link is named",
			setup: func() {
				e.mustStep(rotation.SetSecret, arn, token)
				newPEM, _, err := e.app.Store.CertWithKey(e.ctx(), "west", secretstore.Syncer, token)
				if err != nil {
					t.Fatal(err)
				}
				// Someone removes the new certificate from east/1 by hand.
				if err := e.st.Sim.Cluster("east").MutateDB(1, func(c *simulator.DBConfig) {
					c.AuthenticationSSLClientCerts = slices.DeleteFunc(c.AuthenticationSSLClientCerts, func(p string) bool { return certs.SameCert(p, newPEM) })
				}); err != nil {
					t.Fatal(err)
				}
			},
			want:    []string{"1 of 1 link(s)", "west/1 <- east/1: out-of-sync", "unknown ca", "within 300ms"},
			outcome: audit.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			e.events()
			res, err := e.step(rotation.TestSecret, arn, token)
			if err == nil {
				t.Fatal("testSecret succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if res.Outcome != tt.outcome {
				t.Errorf("outcome %s, want %s", res.Outcome, tt.outcome)
			}
			evs := e.events()
			if len(evs) != 1 || evs[0].Step != rotation.AuditTest || evs[0].Outcome != tt.outcome || evs[0].Error == nil {
				t.Errorf("audit events %v, want one %s %s with the error", rotationOutcomes(evs), rotation.AuditTest, tt.outcome)
			}
		})
	}
}
