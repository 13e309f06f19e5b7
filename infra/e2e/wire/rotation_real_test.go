package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replica-tls/replica-tls/infra/dataplane/dptest"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// rotate runs a whole rotation of a cluster's certificate, the four steps in order, the way the
// rotation function wires shared/rotation. The secrets' first versions were recorded by the
// replica-created function.
func rotate(t *testing.T, f *fixture, cluster string, kind secretstore.Kind) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	app := testkit.NewApp(f.st, logs)
	name := app.Store.SecretName(cluster, kind)
	// RotateSecret without a function and without RotateImmediately only records the schedule in moto.
	_, err := secretsmanager.NewFromConfig(f.st.AWS).RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:          aws.String(name),
		RotateImmediately: aws.Bool(false),
		RotationRules:     &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
	})
	if err != nil {
		t.Fatalf("enable rotation of %s: %v", name, err)
	}
	app.Store.Invalidate()
	d, err := app.Store.Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	token := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	svc := testkit.NewRotationService(app.Store)
	svc.Begin(name, token)

	for _, step := range []rotation.Step{rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret, rotation.FinishSecret} {
		rec := app.Run("secrets-manager-rotation", token, false)
		r := rotation.New(rotation.Config{
			Secrets:  svc,
			Registry: app.Registry,
			Reconciler: reconcile.New(reconcile.Config{
				Registry: app.Registry, Certs: app.Registry,
				Auditor: rec, Poll: 10 * time.Millisecond, PruneAfter: 7 * 24 * time.Hour, Logger: app.Logger,
			}),
			Auditor:  rec,
			Policy:   reconcile.DefaultPolicy(),
			Settings: rotation.Settings{KeyType: certs.ECDSAP256, TestTimeout: 30 * time.Second, TestPoll: 50 * time.Millisecond},
			Logger:   app.Logger,
		})
		began := time.Now()
		res, err := r.Handle(ctx, rotation.Request{Step: step, SecretID: d.ARN, Token: token})
		out, _ := json.Marshal(res)
		testkit.NoLeaks(t, f.st, "rotation result", string(out))
		testkit.NoLeaks(t, f.st, "rotation log", logs.String())
		if err != nil {
			testkit.NoLeaks(t, f.st, "rotation error", err.Error())
			t.Fatalf("%s of %s: %v\nresult: %s", step, name, err, out)
		}
		t.Logf("%s %s: %s in %v", name, step, res.Outcome, time.Since(began).Round(time.Millisecond))
	}
}

// TestRotationUnderLoad rotates with shared/rotation while the harness writes to the source and reads
// the replica: testSecret itself reads the link's real state, the longest gap is reported, and the
// replica must end equal to the source.
func TestRotationUnderLoad(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		kind    secretstore.Kind
	}{
		{"syncer certificate of the destination cluster", "west", secretstore.Syncer},
		{"proxy certificate of the source cluster", "east", secretstore.Proxy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := securedWithCounter(t)
			rotate(t, f, tt.cluster, tt.kind)
			dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
			// A new connection must succeed with what the clusters present now.
			f.west.DropConnections()
			dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
			gap := c.finish(t)
			t.Logf("%s rotation under load: longest gap %v (reads every %v)", tt.kind, gap, readEvery)
		})
	}
}
