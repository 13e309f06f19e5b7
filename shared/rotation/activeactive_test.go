package rotation_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

const crdbGUID = "552bbccb-99f3-4142-bd17-93d245f0bc79"

// TestActiveActiveForceUpdatedAfterTheSwap: a rotation of either certificate on a cluster hosting an
// Active-Active database force-updates it right after the new certificate is installed, audited,
// so its peers accept the new certificate's syncer connections again.
func TestActiveActiveForceUpdatedAfterTheSwap(t *testing.T) {
	for _, kind := range []secretstore.Kind{secretstore.Syncer, secretstore.Proxy} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, nil, simulator.Options{})
			west := e.st.Sim.Cluster("west")
			if err := west.AddActiveActive(crdbGUID, 1, "north.redis.local"); err != nil {
				t.Fatal(err)
			}
			e.enableRotation("west", kind)
			arn := e.arn("west", kind)
			token := e.startRotation("west", kind)
			e.events()
			e.mustStep(rotation.CreateSecret, arn, token)
			e.mustStep(rotation.SetSecret, arn, token)
			stale, forced, err := west.ActiveActiveState(crdbGUID)
			if err != nil {
				t.Fatal(err)
			}
			if stale || forced != 1 {
				t.Errorf("after setSecret: Active-Active stale %v, force updates %d; want fresh after one", stale, forced)
			}
			var steps []string
			for _, ev := range e.events() {
				if ev.Step == rotation.AuditActiveActive || ev.Step == rotation.AuditInstall {
					steps = append(steps, ev.Step+":"+string(ev.Outcome))
					if ev.Step == rotation.AuditActiveActive && ev.Details["crdb_guid"] != crdbGUID {
						t.Errorf("event %s names crdb %v, want %s", ev.Step, ev.Details["crdb_guid"], crdbGUID)
					}
				}
			}
			want := []string{rotation.AuditInstall + ":started", rotation.AuditInstall + ":succeeded",
				rotation.AuditActiveActive + ":started", rotation.AuditActiveActive + ":succeeded"}
			if !slices.Equal(steps, want) {
				t.Errorf("audit steps %v, want %v", steps, want)
			}
			e.mustStep(rotation.TestSecret, arn, token)
			e.mustStep(rotation.FinishSecret, arn, token)
			if stale, _, _ := west.ActiveActiveState(crdbGUID); stale {
				t.Error("Active-Active database stale after the rotation")
			}
		})
	}
}

// TestActiveActiveUnreachablePeerRefusesTheRotation: when a participating cluster cannot be reached,
// a force update could not follow the swap, so setSecret refuses before changing anything.
func TestActiveActiveUnreachablePeerRefusesTheRotation(t *testing.T) {
	for _, kind := range []secretstore.Kind{secretstore.Syncer, secretstore.Proxy} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t, nil, simulator.Options{})
			west := e.st.Sim.Cluster("west")
			if err := west.AddActiveActive(crdbGUID, 1, "north.redis.local", "south.redis.local"); err != nil {
				t.Fatal(err)
			}
			if err := west.SetActiveActivePeerReachable(crdbGUID, "south.redis.local", false); err != nil {
				t.Fatal(err)
			}
			e.enableRotation("west", kind)
			arn := e.arn("west", kind)
			token := e.startRotation("west", kind)
			e.mustStep(rotation.CreateSecret, arn, token)
			presented := e.presented("west", kind)
			trusted := e.trusted("east", 1)
			e.events()
			writes := e.writes()

			_, err := e.step(rotation.SetSecret, arn, token)
			if err == nil {
				t.Fatal("setSecret succeeded with an unreachable Active-Active participant")
			}
			if e.writes() != writes {
				t.Errorf("%d cluster writes, want none", e.writes()-writes)
			}
			if e.presented("west", kind) != presented || !slices.Equal(e.trusted("east", 1), trusted) {
				t.Error("the refused setSecret changed a certificate or a trust list")
			}
			if stale, forced, _ := west.ActiveActiveState(crdbGUID); stale || forced != 0 {
				t.Errorf("Active-Active stale %v, forced %d; want untouched", stale, forced)
			}
			var got *audit.Event
			for _, ev := range e.events() {
				if ev.Outcome == audit.Started {
					t.Errorf("a %s started event: nothing may start", ev.Step)
				}
				if ev.Step == rotation.AuditSet && ev.Outcome == audit.Failed {
					got = &ev
				}
			}
			if got == nil || got.Error == nil || got.Error.Code != rotation.CodeActiveActiveUnreachable {
				t.Fatalf("setSecret event %+v, want failed with %s", got, rotation.CodeActiveActiveUnreachable)
			}
			var rej *reconcile.RejectError
			if errors.As(err, &rej) {
				t.Errorf("an unreachable peer is a failure to retry, not a rejection: %v", err)
			}

			// Once the participant is back, the same rotation goes through.
			if err := west.SetActiveActivePeerReachable(crdbGUID, "south.redis.local", true); err != nil {
				t.Fatal(err)
			}
			e.mustStep(rotation.SetSecret, arn, token)
			if stale, forced, _ := west.ActiveActiveState(crdbGUID); stale || forced != 1 {
				t.Errorf("after the retry: Active-Active stale %v, forced %d; want fresh after one", stale, forced)
			}
		})
	}
}
