package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

const triggerKind = "cluster-registered"

type handler struct {
	app *lambdaapp.App
}

type certResult struct {
	Cluster   string `json:"cluster"`
	Kind      string `json:"kind"`
	Outcome   string `json:"outcome"`
	Subject   string `json:"subject,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	NotAfter  string `json:"not_after,omitempty"`
	VersionID string `json:"version_id,omitempty"`
}

type response struct {
	RunID        string                  `json:"run_id"`
	EventID      string                  `json:"event_id,omitempty"`
	Cluster      string                  `json:"cluster"`
	DryRun       bool                    `json:"dry_run"`
	Certificates []certResult            `json:"certificates"`
	Calls        int                     `json:"cluster_api_calls"`
	Writes       int                     `json:"cluster_api_writes"`
	Links        []lambdaapp.LinkSummary `json:"links"`
	Warnings     []string                `json:"warnings,omitempty"`
}

func (h *handler) handle(ctx context.Context, payload json.RawMessage) (response, error) {
	start := time.Now()
	m := h.app.Metrics()
	defer m.Flush(ctx) // before returning: Lambda freezes the environment after
	env, err := trigger.ParseEnvelope(payload)
	var ev trigger.ClusterRegistered
	if err == nil {
		ev, err = trigger.DecodeClusterRegistered(env, h.app.Config.SecretPrefix)
	}
	if err == nil && env.Source != "aws.secretsmanager" { // the CloudTrail path is AWS's own
		err = h.app.CheckSender(env)
	}
	rec := h.app.Run(triggerKind, env.ID, ev.DryRun)
	resp := response{RunID: rec.Run().ID, EventID: env.ID, Cluster: ev.Cluster, DryRun: ev.DryRun,
		Certificates: []certResult{}, Links: []lambdaapp.LinkSummary{}}
	if err != nil {
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}

	if _, err := h.app.Registry.ClusterClient(ctx, ev.Cluster); err != nil {
		if errors.Is(err, reconcile.ErrUnknownCluster) {
			err = fmt.Errorf("cluster %q is not registered (no API secret under %s): %w", ev.Cluster, h.app.Config.SecretPrefix, err)
		}
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}
	fleet, err := h.app.LoadFleet(ctx)
	if err == nil {
		// The registry listing may predate this registration (it is cached briefly).
		err = fleet.Extend(ctx, h.app.Registry, []string{ev.Cluster})
	}
	if err != nil {
		return resp, err
	}
	if ferr, ok := fleet.Errors[ev.Cluster]; ok {
		if lambdaapp.IsRejection(ferr) {
			// It reports a name its registration does not allow (identity_mismatch).
			return resp, lambdaapp.RejectEvent(ctx, rec, start, ferr)
		}
		return resp, fmt.Errorf("read newly registered cluster %s: %w", ev.Cluster, ferr)
	}
	// Pin the FQDN it reported: from now on it must keep reporting it, and links resolve to it
	// through that name only.
	if err := h.app.PinCluster(ctx, rec, ev.Cluster, fleet.Clusters[ev.Cluster].FQDN, ev.DryRun); err != nil {
		return resp, err
	}
	for name, ferr := range fleet.Errors {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("cluster %s could not be read: %v", name, ferr))
	}
	results, warnings := h.app.RecordFleetCertificates(ctx, rec, fleet, ev.DryRun)
	resp.Warnings = append(resp.Warnings, warnings...)
	for _, r := range results {
		cr := certResult{Cluster: r.Cluster, Kind: string(r.Kind), Outcome: string(r.Outcome), VersionID: r.VersionID}
		if r.Cert != nil {
			cr.Subject, cr.SHA256, cr.NotAfter = r.Cert.Subject, r.Cert.Fingerprint, r.Cert.NotAfter.Format(time.RFC3339)
		}
		resp.Certificates = append(resp.Certificates, cr)
	}
	pol := reconcile.Policy{Scope: reconcile.Scope(h.app.Config.DefaultScope), ClientAuth: true, DryRun: ev.DryRun}
	res, err := h.app.Reconciler(rec, results...).ReconcileCluster(ctx, fleet, ev.Cluster, pol)
	resp.Calls, resp.Writes = res.Calls, res.Writes
	m.Links(res.Links, res.Calls, res.Writes)
	resp.Links = lambdaapp.Summaries(res.Links)
	return resp, err
}
