package rotation_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// calls counts every API call of every simulated cluster.
func (e *env) calls() int {
	n := 0
	for _, c := range e.st.Sim.Clusters() {
		n += testkit.Calls(e.st, c.Name)
	}
	return n
}

// stagePending plays the part of Secrets Manager that stages a version: value under token, AWSPENDING.
func (e *env) stagePending(cluster string, kind secretstore.Kind, token, value string) {
	e.t.Helper()
	_, err := e.sm.PutSecretValue(e.ctx(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(e.secretName(cluster, kind)), SecretString: aws.String(value),
		ClientRequestToken: aws.String(token), VersionStages: []string{secretstore.StagePending},
	})
	if err != nil {
		e.t.Fatalf("stage AWSPENDING on %s: %v", e.secretName(cluster, kind), err)
	}
	e.app.Store.Invalidate()
}

// unstagePending removes AWSPENDING from token's version, as the configuration test ends.
func (e *env) unstagePending(cluster string, kind secretstore.Kind, token string) {
	e.t.Helper()
	_, err := e.sm.UpdateSecretVersionStage(e.ctx(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(e.secretName(cluster, kind)), VersionStage: aws.String(secretstore.StagePending),
		RemoveFromVersionId: aws.String(token),
	})
	if err != nil {
		e.t.Fatalf("remove AWSPENDING from %s: %v", token, err)
	}
	e.app.Store.Invalidate()
}

// currentValue is the AWSCURRENT secret string, byte for byte.
func (e *env) currentValue(cluster string, kind secretstore.Kind) string {
	e.t.Helper()
	out, err := e.sm.GetSecretValue(e.ctx(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(e.secretName(cluster, kind)), VersionStage: aws.String(secretstore.StageCurrent),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.SecretString)
}

// TestConfigurationTestIsAnsweredWithoutChangingAnything plays what Secrets Manager does when
// rotation is enabled with RotateImmediately false: a copy of the AWSCURRENT value staged AWSPENDING
// under a new token, testSecret alone, then the stage removed. The step must succeed (skipped) without
// a single cluster call, whether the current version is a recorded certificate (no key) or one a
// rotation made (with its key).
func TestConfigurationTestIsAnsweredWithoutChangingAnything(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		kind    secretstore.Kind
		rotated bool // a full rotation ran first: AWSCURRENT holds a key
	}{
		{name: "syncer, recorded certificate", cluster: "west", kind: secretstore.Syncer},
		{name: "proxy, recorded certificate", cluster: "east", kind: secretstore.Proxy},
		{name: "syncer, certificate with its key after a rotation", cluster: "west", kind: secretstore.Syncer, rotated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, simulator.Options{})
			e.enableRotation(tt.cluster, tt.kind)
			arn := e.arn(tt.cluster, tt.kind)
			if tt.rotated {
				token := e.startRotation(tt.cluster, tt.kind)
				for _, step := range allSteps {
					e.mustStep(step, arn, token)
				}
			}
			e.events()
			before := e.stages(tt.cluster, tt.kind)
			current := versionWith(before, secretstore.StageCurrent)

			token := newToken()
			e.stagePending(tt.cluster, tt.kind, token, e.currentValue(tt.cluster, tt.kind))
			calls, writes := e.calls(), e.writes()
			res, err := e.step(rotation.TestSecret, arn, token)
			if err != nil {
				t.Fatalf("testSecret of the configuration test: %v", err)
			}
			if got := e.calls() - calls; got != 0 || e.writes() != writes || res.Calls != 0 || res.Writes != 0 {
				t.Errorf("the configuration test made %d cluster calls (%d writes; result %d/%d), want none", got, e.writes()-writes, res.Calls, res.Writes)
			}
			if res.Outcome != audit.Skipped || res.Certificate == nil || res.Certificate.Fingerprint != e.certOf(tt.cluster, tt.kind, current) {
				t.Errorf("result %+v: want skipped, naming the current certificate", res)
			}
			evs := e.events()
			if diff := cmp.Diff([]string{"rotation-test-secret:skipped"}, rotationOutcomes(evs)); diff != "" {
				t.Fatalf("audit events (-want +got):\n%s", diff)
			}
			if d := evs[0].Details; d["configuration_test"] != true || d["current_version_id"] != current || d["reason"] == "" {
				t.Errorf("audit details %v: want configuration_test, the current version and a reason", d)
			}

			e.unstagePending(tt.cluster, tt.kind, token)
			after := e.stages(tt.cluster, tt.kind)
			delete(after, token) // moto keeps the unlabelled version; Secrets Manager deprecates it
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("the secret's stages changed (-before +after):\n%s", diff)
			}
		})
	}
}

// TestRotationPendingCertificateStillGetsTheFullTest: only an exact copy of AWSCURRENT is recognised.
// A real rotation's pending certificate is tested in full (it fails before setSecret, succeeds
// after), and a near copy (the current certificate, one byte more) is refused as it always was.
func TestRotationPendingCertificateStillGetsTheFullTest(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{})
	e.enableRotation("west", secretstore.Syncer)
	arn := e.arn("west", secretstore.Syncer)

	t.Run("near copy", func(t *testing.T) {
		token := newToken()
		cur, err := e.app.Store.Cert(e.ctx(), "west", secretstore.Syncer, secretstore.StageCurrent)
		if err != nil {
			t.Fatal(err)
		}
		e.stagePending("west", secretstore.Syncer, token, `{"certificate":"`+jsonEscape(cur.Certificate+"\n")+`"}`)
		defer e.unstagePending("west", secretstore.Syncer, token)
		_, err = e.step(rotation.TestSecret, arn, token)
		var rej *reconcile.RejectError
		if !errors.As(err, &rej) || rej.Code != rotation.CodeInvalidPending {
			t.Errorf("testSecret of a near copy: err %v, want %s", err, rotation.CodeInvalidPending)
		}
		e.events()
	})

	t.Run("rotation", func(t *testing.T) {
		token := e.startRotation("west", secretstore.Syncer)
		e.mustStep(rotation.CreateSecret, arn, token)
		calls := e.calls()
		_, err := e.step(rotation.TestSecret, arn, token)
		var rej *reconcile.RejectError
		if !errors.As(err, &rej) || rej.Code != rotation.CodeNotInstalled {
			t.Errorf("testSecret before setSecret: err %v, want %s", err, rotation.CodeNotInstalled)
		}
		if e.calls() == calls {
			t.Error("testSecret of a rotation read no cluster: it was not tested")
		}
		e.mustStep(rotation.SetSecret, arn, token)
		res := e.mustStep(rotation.TestSecret, arn, token)
		if res.Outcome != audit.Succeeded || len(res.Links) == 0 || res.Calls == 0 {
			t.Errorf("testSecret after setSecret: %+v, want succeeded after reading the links", res)
		}
		evs := rotationOutcomes(e.events())
		if slices.Contains(evs, "rotation-test-secret:skipped") {
			t.Errorf("a rotation's testSecret was skipped: %v", evs)
		}
	})
}

// jsonEscape is s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
