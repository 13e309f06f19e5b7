package main

import (
	"context"
	"encoding/json"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

type handler struct {
	app     *lambdaapp.App
	sweeper *sweep.Sweeper
}

// response is the sweep's report plus the links that were not already in sync, with no secret
// material.
type response struct {
	sweep.Report
	Links []lambdaapp.LinkSummary `json:"links"`
}

func (h *handler) handle(ctx context.Context, payload json.RawMessage) (response, error) {
	start := time.Now()
	m := h.app.Metrics()
	defer m.Flush(ctx) // before returning: Lambda freezes the environment after
	req, tr, err := sweep.ParseRequest(payload)
	// The grace sink lets the failures of work cut short by the deadline still reach the audit trail.
	rec := audit.NewRecorder(sweep.GraceSink(h.app.Sink), audit.Run{
		Actor: h.app.Config.FunctionName, Trigger: tr, DryRun: req.DryRun,
	}, h.app.Now)
	resp := response{Report: sweep.Report{RunID: rec.Run().ID, Scope: req.Scope(), DryRun: req.DryRun}, Links: []lambdaapp.LinkSummary{}}
	if err != nil {
		return resp, lambdaapp.RejectEvent(ctx, rec, start, err)
	}
	rep, err := h.sweeper.Run(ctx, rec, req)
	resp.Report = rep
	m.Links(rep.Reports, rep.Calls, rep.Writes)
	m.Add(metrics.DriftDetected, metrics.Count, float64(rep.Drift))
	if err == nil && !req.DryRun {
		m.Add(metrics.SweepCompleted, metrics.Count, 1) // the "no sweep for 26 hours" alarm watches it
	}
	resp.Links = lambdaapp.Summaries(notInSync(rep.Reports))
	return resp, err
}

// notInSync keeps the links worth a line in the response: those changed, planned, failed or refused.
func notInSync(reports []reconcile.LinkReport) []reconcile.LinkReport {
	out := make([]reconcile.LinkReport, 0, len(reports))
	for _, r := range reports {
		if r.Err == nil && r.Source.Outcome == audit.Skipped && r.Destination.Outcome == audit.Skipped {
			continue
		}
		out = append(out, r)
	}
	return out
}
