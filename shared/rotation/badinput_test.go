package rotation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

func TestBadRequestsAreRejectedAndChangeNothing(t *testing.T) {
	e := newEnv(t, nil, simulator.Options{})
	e.enableRotation("west", secretstore.Syncer)
	westSyncer := e.secretName("west", secretstore.Syncer)
	previous := versionWith(e.stages("west", secretstore.Syncer), secretstore.StagePrevious)
	token := e.startRotation("west", secretstore.Syncer)
	prefix := e.st.Prefix

	tests := []struct {
		name     string
		step     rotation.Step
		secretID string
		token    string
		wantCode string
		wantText string
	}{
		{name: "unknown secret", step: rotation.CreateSecret, secretID: prefix + "clusters/nowhere/syncer", token: token,
			wantCode: rotation.CodeUnknownSecret, wantText: "does not exist"},
		{name: "secret outside the prefix", step: rotation.CreateSecret, secretID: "other/clusters/west/syncer", token: token,
			wantCode: rotation.CodeNotCertSecret, wantText: "not a syncer or proxy certificate secret"},
		{name: "a cluster's API secret", step: rotation.CreateSecret, secretID: prefix + "clusters/west/api", token: token,
			wantCode: rotation.CodeNotCertSecret},
		{name: "an ARN of another service", step: rotation.SetSecret, secretID: "arn:aws:ssm:us-east-1:123456789012:parameter/x", token: token,
			wantCode: rotation.CodeNotCertSecret},
		{name: "rotation disabled", step: rotation.CreateSecret, secretID: e.secretName("east", secretstore.Syncer), token: token,
			wantCode: rotation.CodeRotationDisabled, wantText: "does not have rotation enabled"},
		{name: "foreign token", step: rotation.CreateSecret, secretID: westSyncer, token: newToken(),
			wantCode: rotation.CodeForeignToken, wantText: "is not a version of secret"},
		{name: "token of a version that is not pending", step: rotation.SetSecret, secretID: westSyncer, token: previous,
			wantCode: rotation.CodeNotPending, wantText: "is not AWSPENDING"},
		{name: "token too short", step: rotation.CreateSecret, secretID: westSyncer, token: "abc",
			wantCode: rotation.CodeInvalidToken},
		{name: "unknown step", step: "rotateSecret", secretID: westSyncer, token: token,
			wantCode: rotation.CodeUnknownStep},
		{name: "setSecret before createSecret stored anything", step: rotation.SetSecret, secretID: westSyncer, token: token,
			wantCode: rotation.CodeNoPendingValue, wantText: "run createSecret first"},
		{name: "finishSecret before createSecret stored anything", step: rotation.FinishSecret, secretID: westSyncer, token: token,
			wantCode: rotation.CodeNoPendingValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := e.stages("west", secretstore.Syncer)
			writes := e.writes()
			e.events()

			res, err := e.step(tt.step, tt.secretID, tt.token)
			var rej *reconcile.RejectError
			if !errors.As(err, &rej) || rej.Code != tt.wantCode {
				t.Fatalf("err = %v, want a %s rejection", err, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantText) || res.Outcome != audit.Rejected {
				t.Errorf("err = %q (outcome %s), want it to say %q", err, res.Outcome, tt.wantText)
			}
			evs := e.events()
			if len(evs) != 1 || evs[0].Outcome != audit.Rejected || evs[0].Error == nil || evs[0].Error.Code != tt.wantCode ||
				evs[0].DetailType != audit.DetailRotation {
				t.Errorf("audit events %+v, want one rejected rotation event with code %s", evs, tt.wantCode)
			}
			if diff := cmp.Diff(stages, e.stages("west", secretstore.Syncer)); diff != "" {
				t.Errorf("the secret changed (-before +after):\n%s", diff)
			}
			if e.writes() != writes {
				t.Errorf("%d cluster writes, want none", e.writes()-writes)
			}
		})
	}
}
