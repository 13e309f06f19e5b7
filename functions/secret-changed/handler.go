package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

const (
	triggerKind = "secret-label-updated"
	step        = "secret-changed" // this function's own audit step
)

type handler struct {
	app *lambdaapp.App
}

// response says what was looked at and done; no secret material.
type response struct {
	RunID    string                  `json:"run_id"`
	EventID  string                  `json:"event_id,omitempty"`
	Secret   string                  `json:"secret,omitempty"`
	Label    string                  `json:"label,omitempty"`
	Cluster  string                  `json:"cluster,omitempty"`
	Kind     string                  `json:"kind,omitempty"`
	Outcome  string                  `json:"outcome"`
	Reason   string                  `json:"reason,omitempty"`
	Calls    int                     `json:"cluster_api_calls"`
	Writes   int                     `json:"cluster_api_writes"`
	Links    []lambdaapp.LinkSummary `json:"links"`
	Warnings []string                `json:"warnings,omitempty"`
}

func (h *handler) handle(ctx context.Context, payload json.RawMessage) (response, error) {
	start := time.Now()
	m := h.app.Metrics()
	defer m.Flush(ctx) // before returning: Lambda freezes the environment after
	env, err := trigger.ParseEnvelope(payload)
	var ch change
	if err == nil {
		ch, err = decodeChange(env)
	}
	rec := h.app.Run(triggerKind, env.ID, false)
	resp := response{RunID: rec.Run().ID, EventID: env.ID, Secret: ch.Secret, Label: ch.Label, Links: []lambdaapp.LinkSummary{}}
	if err != nil {
		resp.Outcome = string(audit.Rejected)
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}
	cluster, what, ok := h.app.Store.ParseSecretName(ch.Secret)
	if !ok {
		resp.Outcome = string(audit.Rejected)
		err := &trigger.InvalidError{Field: "detail.name", Reason: fmt.Sprintf("secret %s is not a replica-tls secret under %s", clip(ch.Secret), h.app.Config.SecretPrefix)}
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}
	resp.Cluster, resp.Kind = cluster, what
	event := func(o audit.Outcome) audit.Event {
		return audit.Event{Step: step, Outcome: o, Cluster: cluster, DurationMs: time.Since(start).Milliseconds(),
			Details: map[string]any{"secret": clip(ch.Secret), "label": clip(ch.Label), "kind": what}}
	}
	skip := func(reason string) (response, error) {
		resp.Outcome, resp.Reason = string(audit.Skipped), reason
		e := event(audit.Skipped)
		e.Details["reason"] = reason
		return resp, rec.Record(ctx, e)
	}
	switch {
	case ch.Label != secretstore.StageCurrent:
		return skip("label " + clip(ch.Label) + " moved: only a new AWSCURRENT changes what links should trust")
	case what == "api":
		return skip("the cluster's API secret changed: no link depends on it")
	}

	// A syncer certificate matters to the sources of this cluster's databases: the cluster and what
	// its Replica Of entries resolve to. A proxy certificate matters to every destination of its
	// databases, which only the whole fleet tells.
	var fleet *reconcile.Fleet
	if what == string(secretstore.Syncer) {
		fleet, err = h.app.LoadLinkFleet(ctx, cluster)
	} else {
		fleet, err = h.app.LoadFleet(ctx)
	}
	if err != nil {
		return resp, h.fail(ctx, rec, event, &resp, err)
	}
	for _, name := range slices.Sorted(maps.Keys(fleet.Errors)) {
		resp.Warnings = append(resp.Warnings, audit.Redact(fmt.Sprintf("cluster %s could not be read: %v", name, fleet.Errors[name])))
	}
	r := h.app.Reconciler(rec)
	pol := reconcile.Policy{Scope: reconcile.Scope(h.app.Config.DefaultScope), ClientAuth: true}
	// Every link touching the cluster: as a destination (its syncer certificate in source trust lists)
	// and as a source (its proxy certificate in destination entries, its client certificates).
	res, err := r.ReconcileCluster(ctx, fleet, cluster, pol)
	resp.Calls, resp.Writes = res.Calls, res.Writes
	m.Links(res.Links, res.Calls, res.Writes)
	resp.Links = lambdaapp.Summaries(res.Links)
	if err != nil {
		if lambdaapp.IsRejection(err) && len(res.Links) == 0 {
			resp.Outcome = string(audit.Rejected)
			return resp, err // the reconciler audited the refusal
		}
		return resp, h.fail(ctx, rec, event, &resp, err)
	}
	resp.Outcome = string(audit.Succeeded)
	e := event(audit.Succeeded)
	e.Details["links"], e.Details["writes"] = len(res.Links), res.Writes
	return resp, rec.Record(ctx, e)
}

// fail audits a failed run and returns its error.
func (h *handler) fail(ctx context.Context, rec *audit.Recorder, event func(audit.Outcome) audit.Event, resp *response, err error) error {
	resp.Outcome = string(audit.Failed)
	e := event(audit.Failed)
	e.Error = &audit.ErrorInfo{Code: "error", Message: audit.Redact(err.Error())}
	if aerr := rec.Record(ctx, e); aerr != nil {
		return fmt.Errorf("%w (and the failure could not be audited: %v)", err, aerr)
	}
	return err
}
