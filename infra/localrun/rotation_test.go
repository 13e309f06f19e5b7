package localrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// startRotation turns rotation on for a cluster certificate secret and begins one, as the template's
// RotationSchedule and Secrets Manager's RotateSecret do; it returns the secret's ARN and the token.
func startRotation(t *testing.T, s *Session, cluster string, kind secretstore.Kind) (arn, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := s.Stack
	name := testkit.NewApp(st, io.Discard).Store.SecretName(cluster, kind)
	sm := secretsmanager.NewFromConfig(st.AWS)
	if _, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(name), RotateImmediately: aws.Bool(false),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(90)}}); err != nil {
		t.Fatalf("turn rotation on for %s: %v", name, err)
	}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	token = fmt.Sprintf("%08x-1111-4222-8333-%012x", time.Now().UnixNano()&0xffffffff, time.Now().UnixNano()&0xffffffffffff)
	st.BeginRotation(name, token)
	return aws.ToString(d.ARN), token
}

// rotationStep invokes the real rotation bootstrap with one step.
func rotationStep(t *testing.T, s *Session, step rotation.Step, arn, token string) Invocation {
	t.Helper()
	ev, _ := json.Marshal(map[string]string{"Step": string(step), "SecretId": arn, "ClientRequestToken": token})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv, err := s.Invoke(ctx, "CertRotationFunction", ev)
	if err != nil {
		t.Fatalf("invoke %s: %v", step, err)
	}
	return inv
}

// TestEndToEndRotationOfAClusterWithActiveActive rotates west's syncer certificate with the real
// bootstraps while west hosts an Active-Active database: setSecret force-updates the database right
// after the swap. With a participant unreachable, setSecret is refused before anything changes.
func TestEndToEndRotationOfAClusterWithActiveActive(t *testing.T) {
	const guid = "552bbccb-99f3-4142-bd17-93d245f0bc79"
	s, logs := sessionWith(t, testkit.Options{})
	st := s.Stack
	if reg := invoke(t, s, "ClusterRegisteredFunction", "cluster-registered.json"); reg.Result.FunctionError != nil {
		t.Fatalf("ClusterRegisteredFunction: %v", reg.Result.FunctionError)
	}
	west := st.Sim.Cluster("west")
	if err := west.AddActiveActive(guid, 1, "north.redis.local", "south.redis.local"); err != nil {
		t.Fatal(err)
	}
	arn, token := startRotation(t, s, "west", secretstore.Syncer)
	if inv := rotationStep(t, s, rotation.CreateSecret, arn, token); inv.Result.FunctionError != nil {
		t.Fatalf("createSecret: %v", inv.Result.FunctionError)
	}

	// A participant down: refused, nothing changes.
	if err := west.SetActiveActivePeerReachable(guid, "south.redis.local", false); err != nil {
		t.Fatal(err)
	}
	before, _ := west.SyncerCert()
	writes := testkit.Writes(st, "west") + testkit.Writes(st, "east")
	inv := rotationStep(t, s, rotation.SetSecret, arn, token)
	if inv.Result.FunctionError == nil || !strings.Contains(inv.Result.FunctionError.Message, rotation.CodeActiveActiveUnreachable) &&
		!strings.Contains(inv.Result.FunctionError.Message, "south.redis.local") {
		t.Fatalf("setSecret with south unreachable: %+v, want a failure naming it", inv.Result.FunctionError)
	}
	if after, _ := west.SyncerCert(); !certs.SameCert(before, after) {
		t.Error("west's syncer certificate changed although the rotation was refused")
	}
	if w := testkit.Writes(st, "west") + testkit.Writes(st, "east"); w != writes {
		t.Errorf("the refused setSecret made %d cluster writes", w-writes)
	}
	for _, e := range inv.Audit {
		if e.Event.Outcome == "started" {
			t.Errorf("refused setSecret audited %s started", e.Event.Step)
		}
	}

	// Back: the rotation goes through and the database is force-updated after the swap.
	if err := west.SetActiveActivePeerReachable(guid, "south.redis.local", true); err != nil {
		t.Fatal(err)
	}
	var forcedEvents int
	for _, step := range []rotation.Step{rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		inv := rotationStep(t, s, step, arn, token)
		if inv.Result.FunctionError != nil {
			t.Fatalf("%s: %v", step, inv.Result.FunctionError)
		}
		for _, e := range inv.Audit {
			if e.Event.Step == rotation.AuditActiveActive && e.Event.Outcome == "succeeded" {
				forcedEvents++
			}
		}
	}
	if after, _ := west.SyncerCert(); certs.SameCert(before, after) {
		t.Error("west still presents the old syncer certificate after the rotation")
	}
	stale, forced, err := west.ActiveActiveState(guid)
	if err != nil || stale || forced != 1 || forcedEvents != 1 {
		t.Errorf("Active-Active database: stale %v, force updates %d, audited %d (err %v); want fresh after one, audited", stale, forced, forcedEvents, err)
	}
	db := testkit.ReadDB(t, st, "west", 1)
	if rs := db.ReplicaSources[0]; rs.Status != "in-sync" {
		t.Errorf("west/1's link after the rotation: %s", rs.Status)
	}
	testkit.NoLeaks(t, st, "function logs", logs.String())
}
