package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
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
	if err := rotateErr(t, f, cluster, kind); err != nil {
		t.Fatal(err)
	}
}

// rotateErr is rotate for any goroutine: it logs its steps and returns the first failure.
func rotateErr(t *testing.T, f *fixture, cluster string, kind secretstore.Kind) error {
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
		return fmt.Errorf("enable rotation of %s: %w", name, err)
	}
	app.Store.Invalidate()
	d, err := app.Store.Describe(ctx, name)
	if err != nil {
		return err
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
			Secrets:    svc,
			Registry:   app.Registry,
			Resolver:   app.Registry,
			Reconciler: app.Reconciler(rec), // the function's: stored policies, leases in the stack's table
			Leases:     app.RunLeases(rec),
			Auditor:    rec,
			Policy:     reconcile.DefaultPolicy(),
			Settings:   rotation.Settings{KeyType: certs.ECDSAP256, TestTimeout: 30 * time.Second, TestPoll: 50 * time.Millisecond},
			Logger:     app.Logger,
		})
		began := time.Now()
		res, err := r.Handle(ctx, rotation.Request{Step: step, SecretID: d.ARN, Token: token})
		out, _ := json.Marshal(res)
		testkit.NoLeaks(t, f.st, "rotation result", string(out))
		testkit.NoLeaks(t, f.st, "rotation log", logs.String())
		if err != nil {
			testkit.NoLeaks(t, f.st, "rotation error", err.Error())
			return fmt.Errorf("%s of %s: %w\nresult: %s", step, name, err, out)
		}
		t.Logf("%s %s: %s in %v", name, step, res.Outcome, time.Since(began).Round(time.Millisecond))
	}
	return nil
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

// TestTwoRotationsUnderLoad rotates the syncer certificates of both destination clusters of one
// source at the same moment, while writes flow to the source and both replicas are read: leases
// serialise the two runs' changes to the source's trust list, and replication never stops.
func TestTwoRotationsUnderLoad(t *testing.T) {
	f := newFixtureWith(t, testkit.FanOut("east", "west", "north"))
	for _, d := range []string{"west", "north"} {
		f.invoke(`{"destination":{"cluster":"` + d + `","database":1},"tls_scope":"replica"}`)
	}
	east := f.endpoint("east")
	counters := map[string]*counter{}
	for _, d := range []string{"west", "north"} {
		replica := dptest.Plain(t, f.plane, d, 1)
		dptest.Eventually(t, 20*time.Second, d+" replicates over TLS", func() (bool, string) {
			in := dptest.Info(t, replica, "replication")
			return in["master_port"] == portOf(east.TLSAddr) && in["master_link_status"] == "up", in["master_link_status"]
		})
		dptest.WaitLink(t, f.st.Sim, d, 1, "in-sync", "")
		counters[d] = startCounter(t, dptest.Plain(t, f.plane, "east", 1), replica, "counter-"+d)
	}
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, d := range []string{"west", "north"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := rotateErr(t, f, d, secretstore.Syncer)
			mu.Lock()
			errs[d] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for d, err := range errs {
		if err != nil {
			t.Fatalf("rotation of %s: %v", d, err)
		}
	}
	for _, d := range []string{"west", "north"} {
		// A new connection must succeed with what the clusters present now.
		f.st.Sim.Cluster(d).DropConnections()
		dptest.WaitLink(t, f.st.Sim, d, 1, "in-sync", "")
	}
	for d, c := range counters {
		gap := c.finish(t)
		t.Logf("%s: two syncer rotations at once under load: longest gap %v (reads every %v)", d, gap, readEvery)
	}
}
