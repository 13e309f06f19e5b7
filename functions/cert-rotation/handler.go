package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// triggerKind names this function's runs in audit events; the event id is the rotation's token, so
// the four steps of one rotation share it.
const triggerKind = "secrets-manager-rotation"

type handler struct {
	app      *lambdaapp.App
	settings rotation.Settings
	secrets  rotation.Secrets // the App's store (tests wrap it to play the rotation service)
}

// response is the step's result and the run id; no secret material.
type response struct {
	RunID string `json:"run_id"`
	rotation.Result
}

func (h *handler) handle(ctx context.Context, payload json.RawMessage) (response, error) {
	start := time.Now()
	m := h.app.Metrics()
	defer m.Flush(ctx) // before returning: Lambda freezes the environment after
	var ev events.SecretsManagerSecretRotationEvent
	err := json.Unmarshal(payload, &ev)
	eventID := ev.ClientRequestToken
	if len(eventID) > 64 {
		eventID = eventID[:64] // a real token has at most 64 characters; the guard refuses longer ones
	}
	rec := h.app.Run(triggerKind, eventID, false)
	resp := response{RunID: rec.Run().ID, Result: rotation.Result{Step: rotation.Step(ev.Step)}}
	if err != nil {
		// Field names only: the payload is not echoed.
		bad := &trigger.InvalidError{Reason: "not a Secrets Manager rotation request (want {\"Step\", \"SecretId\", \"ClientRequestToken\"})"}
		return resp, lambdaapp.RejectEvent(ctx, rec, start, bad)
	}
	r := rotation.New(rotation.Config{
		Secrets:  h.secrets,
		Registry: h.app.Registry,
		Resolver: h.app.Registry,
		// The one reconciler every function uses: stored policies, leases, the trust grace period.
		Reconciler: h.app.Reconciler(rec),
		Leases:     h.app.RunLeases(rec),
		Auditor:    rec,
		Policy:     reconcile.Policy{Scope: reconcile.Scope(h.app.Config.DefaultScope), ClientAuth: true},
		Settings:   h.settings,
		Now:        h.app.Now,
		Logger:     h.app.Logger,
	})
	res, err := r.Handle(ctx, rotation.Request{Step: rotation.Step(ev.Step), SecretID: ev.SecretID, Token: ev.ClientRequestToken})
	resp.Result = res
	switch {
	case err != nil:
		m.Add(metrics.RotationFailed, metrics.Count, 1) // the "rotation failed" alarm watches it
	case res.Outcome == audit.Succeeded:
		m.Add(metrics.RotationSucceeded, metrics.Count, 1)
	}
	return resp, err
}
