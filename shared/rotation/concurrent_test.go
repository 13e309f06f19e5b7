package rotation_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// TestTwoSyncerRotationsAtOnce: the syncer certificates of two destination clusters of one source
// rotate at the same moment, every step of both run concurrently (two containers sharing only the
// lease table), with the simulator re-checking every link on every read. Before leases both setSecret
// steps succeeded, then one live link broke and its testSecret failed.
func TestTwoSyncerRotationsAtOnce(t *testing.T) {
	e := newEnv(t, testkit.FanOut("east", "west", "north"), simulator.Options{ReconnectOnRead: true})
	dests := []string{"west", "north"}
	arns, tokens := map[string]string{}, map[string]string{}
	for _, d := range dests {
		e.enableRotation(d, secretstore.Syncer)
		arns[d] = e.arn(d, secretstore.Syncer)
		tokens[d] = e.startRotation(d, secretstore.Syncer)
	}
	e.events()
	// A slow source widens the window between a run's read and its write, where an uncoordinated
	// writer would overwrite the other run's certificate.
	e.st.Sim.Cluster("east").SetLatency(60 * time.Millisecond)
	probes := map[string]*probe{}
	for _, d := range dests {
		probes[d] = startProbe(t, e.st.Sim, d, 1)
	}
	for _, step := range allSteps {
		var wg sync.WaitGroup
		results := make([]error, len(dests))
		outcomes := make([]audit.Outcome, len(dests))
		for i, d := range dests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.step(step, arns[d], tokens[d])
				results[i], outcomes[i] = err, res.Outcome
			}()
		}
		wg.Wait()
		for i, d := range dests {
			if results[i] != nil || outcomes[i] != audit.Succeeded {
				t.Fatalf("%s of %s: %s, %v", step, d, outcomes[i], results[i])
			}
		}
	}
	for _, d := range dests {
		probes[d].assertNeverOutOfSync(t)
		newFP := e.certOf(d, secretstore.Syncer, tokens[d])
		if e.presented(d, secretstore.Syncer) != newFP {
			t.Errorf("%s does not present its new syncer certificate", d)
		}
		if !slices.Contains(e.trusted("east", 1), newFP) {
			t.Errorf("east/1 does not trust %s's new syncer certificate", d)
		}
	}
	e.events()
}

// TestDuplicateSetSecretInstallsOnce: the same setSecret delivered twice at once (Secrets Manager
// retries a step it thinks timed out) installs the certificate once: the second run waits for the
// certificate's lease, then finds the cluster already presenting the pending certificate.
func TestDuplicateSetSecretInstallsOnce(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{ReconnectOnRead: true})
	e.enableRotation("west", secretstore.Syncer)
	arn := e.arn("west", secretstore.Syncer)
	token := e.startRotation("west", secretstore.Syncer)
	e.mustStep(rotation.CreateSecret, arn, token)
	west := e.st.Sim.Cluster("west")
	west.SetLatency(40 * time.Millisecond) // widen the window between reading the cluster and installing
	west.ResetCalls()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.step(rotation.SetSecret, arn, token)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("setSecret delivery %d: %v", i+1, err)
		}
	}
	installs := 0
	for route, n := range west.Calls() {
		if strings.HasPrefix(route, "PUT /v1/cluster/") {
			installs += n
		}
	}
	if installs != 1 {
		t.Errorf("two deliveries of setSecret installed the certificate %d times, want once (%v)", installs, west.Calls())
	}
	if e.presented("west", secretstore.Syncer) != e.certOf("west", secretstore.Syncer, token) {
		t.Error("west does not present the pending certificate")
	}
	e.events()
}
