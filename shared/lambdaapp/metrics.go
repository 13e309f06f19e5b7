package lambdaapp

import (
	"context"
	"errors"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/logging"
	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// RunMetrics is one invocation's metrics, written as CloudWatch embedded metric format lines to
// the function's log when flushed (before the handler returns: Lambda freezes the environment after).
type RunMetrics struct {
	*metrics.Recorder
	app *App
}

// Metrics starts an invocation's metrics; the first invocation of a container counts a cold start.
func (a *App) Metrics() *RunMetrics {
	m := metrics.New(a.metricsOut, a.Config.Metrics)
	if a.cold.CompareAndSwap(true, false) {
		m.Add(metrics.ColdStart, metrics.Count, 1)
	}
	return &RunMetrics{Recorder: m, app: a}
}

// Links counts a run's links by what happened to them, and its cluster API calls and writes.
func (m *RunMetrics) Links(reports []reconcile.LinkReport, calls, writes int) {
	var secured, failed, rejected float64
	for _, r := range reports {
		var rej *reconcile.RejectError
		switch {
		case r.Err != nil && errors.As(r.Err, &rej):
			rejected++
		case r.Err != nil:
			failed++
		case r.Source.Outcome == audit.Succeeded || r.Destination.Outcome == audit.Succeeded:
			secured++
		}
	}
	m.Add(metrics.LinksSeen, metrics.Count, float64(len(reports)))
	m.Add(metrics.LinksSecured, metrics.Count, secured)
	m.Add(metrics.LinksFailed, metrics.Count, failed)
	m.Add(metrics.LinksRejected, metrics.Count, rejected)
	m.Add(metrics.ClusterAPICalls, metrics.Count, float64(calls))
	m.Add(metrics.ClusterAPIWrites, metrics.Count, float64(writes))
}

// Flush writes the lines. A failure is logged; it never fails the run.
func (m *RunMetrics) Flush(ctx context.Context) {
	if err := m.Recorder.Flush(ctx); err != nil {
		logging.Error(ctx, m.app.Logger, "write metrics", err)
	}
}
