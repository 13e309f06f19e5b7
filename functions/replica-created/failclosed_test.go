package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
)

// failureCodes are the codes of the failed events a run audited.
func failureCodes(t *testing.T, f *fixture) []string {
	t.Helper()
	var codes []string
	for _, e := range testkit.AuditEvents(t, f.st, 2*time.Second) {
		if e.Event.Outcome == audit.Failed && e.Event.Error != nil {
			codes = append(codes, e.Event.Error.Code)
		}
	}
	return codes
}

// TestLeaseTableUnreachableChangesNothing: without its lease table a run writes nothing (fail
// closed) and says why.
func TestLeaseTableUnreachableChangesNothing(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	cfg := testkit.AppConfig(f.st)
	cfg.LeaseTable = "no-such-lease-table"
	awsCfg := f.st.AWS.Copy()
	awsCfg.RetryMaxAttempts = 3
	f.logs = &bytes.Buffer{}
	f.h = &handler{app: lambdaapp.New(cfg, awsCfg, f.logs)}
	_, err := f.invoke(event(`{"destination": {"cluster": "west", "database": 1}, "tls_scope": "replica"}`))
	if err == nil {
		t.Fatal("the run succeeded without a lease table")
	}
	if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
		t.Errorf("%d cluster writes without a lease", w)
	}
	codes := failureCodes(t, f)
	if len(codes) == 0 || codes[0] != "lease_unavailable" {
		t.Errorf("failure codes %v, want lease_unavailable", codes)
	}
}

// TestUnreachableSourceFailsFast: a source cluster that does not answer fails the link quickly with
// code unreachable, well inside the run's deadline, and nothing is written.
func TestUnreachableSourceFailsFast(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	f.st.Sim.Cluster("east").SetUnreachable(true)
	start := time.Now()
	_, err := f.invoke(event(`{"destination": {"cluster": "west", "database": 1}, "tls_scope": "replica"}`))
	took := time.Since(start)
	if err == nil {
		t.Fatal("the run succeeded with its source cluster unreachable")
	}
	if took > 20*time.Second {
		t.Errorf("the run took %s with an unreachable source: the per-cluster budget did not hold", took)
	}
	if w := testkit.Writes(f.st, "west"); w != 0 {
		t.Errorf("%d writes on the destination while its source is unreachable", w)
	}
	codes := failureCodes(t, f)
	found := false
	for _, c := range codes {
		found = found || c == "unreachable"
	}
	if !found {
		t.Errorf("failure codes %v, want unreachable", codes)
	}
	t.Logf("unreachable source: the run failed in %s", took.Round(time.Millisecond))
}
