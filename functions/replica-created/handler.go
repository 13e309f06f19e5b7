package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/replica-tls/replica-tls/shared/inventory"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// triggerKind names this function's runs in audit events.
const triggerKind = "replica-database-created"

type handler struct {
	app *lambdaapp.App
}

// response is what the function returns: enough for a person or a pipeline to see what happened,
// and no secret material.
type response struct {
	RunID    string                  `json:"run_id"`
	EventID  string                  `json:"event_id,omitempty"`
	DryRun   bool                    `json:"dry_run"`
	Changed  bool                    `json:"changed"`
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
	var ev trigger.ReplicaCreated
	if err == nil {
		ev, err = trigger.DecodeReplicaCreated(env, h.app.Config.DefaultScope)
	}
	if err == nil {
		err = h.app.CheckSender(env)
	}
	if err == nil {
		err = h.app.CheckPolicy(ev)
	}
	rec := h.app.Run(triggerKind, env.ID, ev.DryRun)
	resp := response{RunID: rec.Run().ID, EventID: env.ID, DryRun: ev.DryRun, Links: []lambdaapp.LinkSummary{}}
	if err != nil {
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}

	clusters := []string{ev.Destination.Cluster}
	if ev.Source != nil {
		clusters = append(clusters, ev.Source.Cluster)
	}
	fleet, err := h.app.LoadLinkFleet(ctx, clusters...)
	if err != nil {
		return resp, err
	}
	for name, ferr := range fleet.Errors {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("cluster %s could not be read: %v", name, ferr))
	}
	ref := reconcile.LinkRef{DestCluster: ev.Destination.Cluster, DestDB: ev.Destination.Database}
	if ev.Source != nil {
		ref.SourceCluster, ref.SourceDB = ev.Source.Cluster, ev.Source.Database
	}
	pol := reconcile.Policy{Scope: reconcile.Scope(ev.TLSScope), ClientAuth: *ev.ClientAuthentication, DryRun: ev.DryRun, Stated: true}
	// A link that cannot resolve is refused before anything is recorded: a rejected event writes
	// nothing at all. The reconciler audits the refusal.
	var recorded []inventory.Result
	if reconcile.CheckLink(fleet, ref, pol) == nil {
		var warnings []string
		recorded, warnings = h.app.RecordFleetCertificates(ctx, rec, fleet, ev.DryRun)
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	res, err := h.app.Reconciler(rec, recorded...).ReconcileLink(ctx, fleet, ref, pol)
	resp.Calls, resp.Writes, resp.Changed = res.Calls, res.Writes, res.Changed()
	m.Links(res.Links, res.Calls, res.Writes)
	resp.Links = lambdaapp.Summaries(res.Links)
	if !ev.DryRun {
		resp.Warnings = append(resp.Warnings, h.app.RememberPolicies(ctx, rec, pol, env, res.Links)...)
	}
	if err != nil {
		return resp, err
	}
	return resp, nil
}
