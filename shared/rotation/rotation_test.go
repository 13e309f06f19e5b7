package rotation_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

var allSteps = []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret}

// writes counts every mutating call of every simulated cluster.
func (e *env) writes() int {
	n := 0
	for _, c := range e.st.Sim.Clusters() {
		n += testkit.Writes(e.st, c.Name)
	}
	return n
}

// arn is the ARN of a certificate secret: what Secrets Manager passes as SecretId.
func (e *env) arn(cluster string, kind secretstore.Kind) string {
	e.t.Helper()
	d, err := e.app.Store.Describe(e.ctx(), e.secretName(cluster, kind))
	if err != nil {
		e.t.Fatal(err)
	}
	return d.ARN
}

// outcomes lists "step:outcome" of events, keeping only rotation events.
func rotationOutcomes(evs []audit.Event) []string {
	var out []string
	for _, e := range evs {
		if e.DetailType == audit.DetailRotation {
			out = append(out, e.Step+":"+string(e.Outcome))
		}
	}
	return out
}

// checkRotated asserts the end state of a finished rotation: exactly one AWSCURRENT (the token), no
// AWSPENDING, the previous current version AWSPREVIOUS, and the cluster presenting the new certificate.
func (e *env) checkRotated(cluster string, kind secretstore.Kind, token, oldVersion string) {
	e.t.Helper()
	stages := e.stages(cluster, kind)
	var current, pending []string
	for id, st := range stages {
		if slices.Contains(st, secretstore.StageCurrent) {
			current = append(current, id)
		}
		if slices.Contains(st, secretstore.StagePending) {
			pending = append(pending, id)
		}
	}
	if !slices.Equal(current, []string{token}) || len(pending) != 0 {
		e.t.Errorf("stages %v: want exactly one AWSCURRENT (%s) and no AWSPENDING", stages, token)
	}
	if !slices.Contains(stages[oldVersion], secretstore.StagePrevious) {
		e.t.Errorf("the old current version %s is %v, want AWSPREVIOUS", oldVersion, stages[oldVersion])
	}
	if got, want := e.presented(cluster, kind), e.certOf(cluster, kind, token); got != want {
		e.t.Errorf("%s presents sha256:%s, want the rotated sha256:%s", cluster, got[:12], want[:12])
	}
}

// inventoryLeavesRotationAlone runs what every function does first, recording the certificates the
// clusters present, while the cluster presents the AWSPENDING certificate: it must store nothing.
func (e *env) inventoryLeavesRotationAlone(cluster string, kind secretstore.Kind) {
	e.t.Helper()
	before := e.stages(cluster, kind)
	fleet, err := e.app.LoadFleet(e.ctx())
	if err != nil {
		e.t.Fatal(err)
	}
	results, warnings := e.app.RecordFleetCertificates(e.ctx(), e.app.Run("sweep", "", false), fleet, false)
	for _, r := range results {
		if r.Cluster == cluster && r.Kind == kind && r.Outcome != audit.Skipped {
			e.t.Errorf("recording %s's presented %s certificate during the rotation: %s (%s), want skipped", cluster, kind, r.Outcome, r.Reason)
		}
	}
	if len(warnings) > 0 {
		e.t.Errorf("recording certificates: %v", warnings)
	}
	if diff := cmp.Diff(before, e.stages(cluster, kind)); diff != "" {
		e.t.Errorf("recording certificates during the rotation changed the secret (-before +after):\n%s", diff)
	}
}

func TestSyncerRotationKeepsTheLinkInSync(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
	e.keyType = "" // the production default: RSA-2048, like Redis Enterprise
	e.enableRotation("west", secretstore.Syncer)
	oldVersion := versionWith(e.stages("west", secretstore.Syncer), secretstore.StageCurrent)
	oldFP := e.presented("west", secretstore.Syncer)
	arn := e.arn("west", secretstore.Syncer)
	token := e.startRotation("west", secretstore.Syncer)
	e.events()

	p := startProbe(t, e.st.Sim, "west", 1)
	var newFP string
	for _, step := range allSteps {
		res := e.mustStep(step, arn, token)
		if res.Outcome != audit.Succeeded {
			t.Errorf("%s: outcome %s, want succeeded", step, res.Outcome)
		}
		writes := e.writes()
		again := e.mustStep(step, arn, token)
		if e.writes() != writes || again.Writes != 0 {
			t.Errorf("%s run again: %d cluster writes, want none", step, e.writes()-writes)
		}
		switch step {
		case rotation.CreateSecret:
			newFP = e.certOf("west", secretstore.Syncer, token)
			if again.Outcome != audit.Skipped || res.Certificate == nil || res.Certificate.Fingerprint != newFP {
				t.Errorf("createSecret again: %s; result certificate %+v", again.Outcome, res.Certificate)
			}
			pemText, key, err := e.app.Store.CertWithKey(e.ctx(), "west", secretstore.Syncer, token)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := certs.ParseOne(pemText)
			prof, err := certs.ProfileOf(c)
			if err != nil || prof.KeyType != certs.RSA2048 || prof.Kind != certs.KindSyncer || prof.FQDN != "west.redis.local" ||
				prof.Validity < 364*24*time.Hour || certs.CheckKeyPair(pemText, key) != nil {
				t.Errorf("new certificate profile %+v (err %v): want an RSA-2048 syncer certificate of west.redis.local for a year, with its key", prof, err)
			}
			if newFP == oldFP || e.presented("west", secretstore.Syncer) != oldFP || slices.Contains(e.trusted("east", 1), newFP) {
				t.Error("createSecret must only store the new certificate: nothing changes on the clusters")
			}
		case rotation.SetSecret:
			if got := e.trusted("east", 1); !slices.Contains(got, oldFP) || !slices.Contains(got, newFP) {
				t.Errorf("east/1 must trust the old and the new certificate, trusts %d", len(got))
			}
			if e.presented("west", secretstore.Syncer) != newFP {
				t.Error("west does not present the new certificate after setSecret")
			}
			e.inventoryLeavesRotationAlone("west", secretstore.Syncer)
		case rotation.FinishSecret:
			if again.Outcome != audit.Skipped {
				t.Errorf("finishSecret again: %s, want skipped", again.Outcome)
			}
		}
	}
	p.assertNeverOutOfSync(t)
	e.checkRotated("west", secretstore.Syncer, token, oldVersion)
	// Invariant 1: the old certificate stays trusted until the grace period has passed.
	if got := e.trusted("east", 1); !slices.Contains(got, oldFP) || !slices.Contains(got, newFP) {
		t.Errorf("after the rotation east/1 must still trust both certificates")
	}

	evs := e.events()
	e.checkPruning(oldFP, newFP)
	want := []string{
		"rotation-create-secret:started", "rotation-create-secret:succeeded", "rotation-create-secret:skipped",
		"rotation-verify-trust:succeeded", "rotation-install-certificate:started", "rotation-install-certificate:succeeded", "rotation-set-secret:succeeded",
		"rotation-verify-trust:succeeded", "rotation-install-certificate:skipped", "rotation-set-secret:succeeded",
		"rotation-test-secret:succeeded", "rotation-test-secret:succeeded",
		"rotation-finish-secret:started", "rotation-finish-secret:succeeded", "rotation-finish-secret:skipped",
	}
	if diff := cmp.Diff(want, rotationOutcomes(evs)); diff != "" {
		t.Errorf("rotation audit events (-want +got):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.DetailType == audit.DetailRotation && ev.Step != rotation.AuditFinish && (ev.Certificate == nil || ev.Certificate.Fingerprint != newFP) {
			t.Errorf("%s %s names certificate %+v, want the new one", ev.Step, ev.Outcome, ev.Certificate)
		}
	}
	// The source was changed by the reconciler, audited as such, before the certificate was installed.
	iTrust := slices.IndexFunc(evs, func(ev audit.Event) bool { return ev.Step == reconcile.StepSource && ev.Outcome == audit.Succeeded })
	iInstall := slices.IndexFunc(evs, func(ev audit.Event) bool { return ev.Step == rotation.AuditInstall && ev.Outcome == audit.Started })
	if iTrust < 0 || iInstall < 0 || iTrust > iInstall {
		t.Errorf("the trust list update (event %d) must come before the install (event %d)", iTrust, iInstall)
	}
}

// checkPruning reconciles after a syncer rotation of west at later times: the old certificate leaves
// east/1's trust list only once the grace period is over, and the link stays in sync.
func (e *env) checkPruning(oldFP, newFP string) {
	e.t.Helper()
	for _, tc := range []struct {
		after   time.Duration
		wantOld bool
	}{{grace - time.Hour, true}, {grace + time.Hour, false}} {
		later := time.Now().Add(tc.after)
		e.now = func() time.Time { return later }
		fleet, err := e.app.LoadFleet(e.ctx())
		if err != nil {
			e.t.Fatal(err)
		}
		// Pruning is the sweep's: a run that read the whole fleet (Policy.Prune).
		pol := reconcile.DefaultPolicy()
		pol.Prune = true
		if _, err := e.reconciler(e.app.Run("sweep", "", false)).ReconcileCluster(e.ctx(), fleet, "west", pol); err != nil {
			e.t.Fatal(err)
		}
		got := e.trusted("east", 1)
		if slices.Contains(got, oldFP) != tc.wantOld || !slices.Contains(got, newFP) {
			e.t.Errorf("%s after the rotation: east/1 trusts the old certificate: %v, want %v (and the new one)", tc.after, !tc.wantOld, tc.wantOld)
		}
		if s := testkit.ReadDB(e.t, e.st, "west", 1).ReplicaSources[0].Status; s != "in-sync" {
			e.t.Errorf("%s after the rotation, once pruned, the link is %s", tc.after, s)
		}
	}
	e.now = time.Now
	e.events()
}

func TestSwapBeforeTrustBreaksTheLink(t *testing.T) {
	// The wrong order, done by hand as an operator might: the probe must see it.
	e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
	p := startProbe(t, e.st.Sim, "west", 1)
	p.waitSamples(t, 5)
	kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Sim.Cluster("west").SetSyncerCert(kp.CertPEM, kp.KeyPEM); err != nil {
		t.Fatal(err)
	}
	p.waitSamples(t, 5)
	p.halt()
	if _, bad := p.counts(); bad == 0 {
		t.Fatal("the probe never saw the link out of sync after a swap before trust: it cannot catch a broken rotation")
	}
	if !strings.Contains(p.first, "out-of-sync") || !strings.Contains(p.first, "unknown ca") {
		t.Errorf("first bad sample %q, want out-of-sync with an unknown ca error", p.first)
	}
}

func TestProxyRotation(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
	e.enableRotation("east", secretstore.Proxy)
	oldVersion := versionWith(e.stages("east", secretstore.Proxy), secretstore.StageCurrent)
	arn := e.arn("east", secretstore.Proxy)
	token := e.startRotation("east", secretstore.Proxy)

	p := startProbe(t, e.st.Sim, "west", 1)
	var windowMs int64
	for _, step := range allSteps {
		res := e.mustStep(step, arn, token)
		if step == rotation.SetSecret {
			windowMs = res.WindowMs
			newFP := e.certOf("east", secretstore.Proxy, token)
			db := testkit.ReadDB(t, e.st, "west", 1)
			if fingerprint(t, db.ReplicaSources[0].ServerCert) != newFP || e.presented("east", secretstore.Proxy) != newFP {
				t.Error("after setSecret east must present the new proxy certificate and west/1 trust it")
			}
			// The window is over when setSecret returns: a new connection succeeds right away.
			if rs := db.ReplicaSources[0]; rs.Status != "in-sync" || rs.LastError != "" {
				t.Errorf("after setSecret west/1 is %s (%s), want in-sync", rs.Status, rs.LastError)
			}
			e.inventoryLeavesRotationAlone("east", secretstore.Proxy)
			// A reconcile during the rotation (the sweep, a secret change) keeps the destination on the
			// certificate east presents, AWSPENDING until finishSecret.
			aud := e.app.Run("sweep", "", false)
			fleet, err := e.app.LoadFleet(e.ctx())
			if err != nil {
				t.Fatal(err)
			}
			rep, err := e.reconciler(aud).ReconcileCluster(e.ctx(), fleet, "east", reconcile.DefaultPolicy())
			if err != nil || rep.Writes != 0 {
				t.Errorf("a reconcile during the proxy rotation wrote %d times (err %v), want none", rep.Writes, err)
			}
		}
		writes := e.writes()
		if again := e.mustStep(step, arn, token); again.Writes != 0 || e.writes() != writes {
			t.Errorf("%s run again: %d cluster writes, want none", step, e.writes()-writes)
		}
	}
	p.halt()
	samples, bad := p.counts()
	t.Logf("proxy rotation window: the probe (ReconnectOnRead, a sample every ~2ms) saw west/1 out of sync in %d of %d samples, "+
		"longest %s; the function measured %d ms from the swap to the last destination entry updated", bad, samples, p.maxBad.Round(time.Millisecond), windowMs)
	e.checkRotated("east", secretstore.Proxy, token, oldVersion)
	db := testkit.ReadDB(t, e.st, "west", 1)
	if rs := db.ReplicaSources[0]; rs.Status != "in-sync" || fingerprint(t, rs.ServerCert) != e.presented("east", secretstore.Proxy) {
		t.Errorf("after the rotation west/1 is %s, trusting another certificate than east presents", rs.Status)
	}
	want := []string{
		"rotation-create-secret:started", "rotation-create-secret:succeeded", "rotation-create-secret:skipped",
		"rotation-install-certificate:started", "rotation-install-certificate:succeeded", "rotation-update-destinations:succeeded", "rotation-set-secret:succeeded",
		"rotation-install-certificate:skipped", "rotation-update-destinations:succeeded", "rotation-set-secret:succeeded",
		"rotation-test-secret:succeeded", "rotation-test-secret:succeeded",
		"rotation-finish-secret:started", "rotation-finish-secret:succeeded", "rotation-finish-secret:skipped",
	}
	if diff := cmp.Diff(want, rotationOutcomes(e.events())); diff != "" {
		t.Errorf("rotation audit events (-want +got):\n%s", diff)
	}
}
