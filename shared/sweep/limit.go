package sweep

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// errBreakerOpen is why a call was not made: the cluster failed too often in a row in this sweep.
var errBreakerOpen = errors.New("not called: too many calls in a row failed earlier in this sweep")

// limitedRegistry hands out cluster clients that are polite to each cluster (a rate limit and a
// bound on calls in flight), bounded in time per call, and that stop calling a cluster that keeps
// failing. One per sweep: its limits and counters are that sweep's.
type limitedRegistry struct {
	reg  reconcile.Registry
	opts Options

	mu       sync.Mutex
	clusters map[string]*limitedAPI
}

var _ reconcile.Registry = (*limitedRegistry)(nil)

func newLimitedRegistry(reg reconcile.Registry, opts Options) *limitedRegistry {
	return &limitedRegistry{reg: reg, opts: opts, clusters: map[string]*limitedAPI{}}
}

func (l *limitedRegistry) ClusterNames(ctx context.Context) ([]string, error) {
	return l.reg.ClusterNames(ctx)
}

// Client wraps the registry's client for name; every client of one cluster shares its limits.
func (l *limitedRegistry) Client(ctx context.Context, name string) (reconcile.ClusterAPI, error) {
	c, err := l.reg.Client(ctx, name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.clusters[name]
	if !ok {
		a = &limitedAPI{
			name:     name,
			limiter:  rate.NewLimiter(rate.Limit(l.opts.ClusterRate), l.opts.ClusterBurst),
			slots:    make(chan struct{}, l.opts.ClusterInFlight),
			timeout:  l.opts.CallTimeout,
			maxFails: l.opts.BreakerFailures,
		}
		l.clusters[name] = a
	}
	a.setAPI(c)
	return a, nil
}

// totals are the calls and writes made through every client so far.
func (l *limitedRegistry) totals() (calls, writes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.clusters {
		calls += int(a.calls.Load())
		writes += int(a.writes.Load())
	}
	return calls, writes
}

// limitedAPI is one cluster's client behind its limits.
type limitedAPI struct {
	name     string
	limiter  *rate.Limiter
	slots    chan struct{}
	timeout  time.Duration
	maxFails int

	mu    sync.Mutex
	api   reconcile.ClusterAPI
	fails int // calls failed in a row

	calls, writes atomic.Int64
}

var _ reconcile.ClusterAPI = (*limitedAPI)(nil)

func (a *limitedAPI) setAPI(c reconcile.ClusterAPI) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.api = c
}

func (a *limitedAPI) Name() string { return a.name }

// do makes one call within the cluster's limits and the call's time budget.
func (a *limitedAPI) do(ctx context.Context, budget time.Duration, write bool, call func(context.Context, reconcile.ClusterAPI) error) error {
	a.mu.Lock()
	api, open := a.api, a.fails >= a.maxFails
	a.mu.Unlock()
	if open {
		return fmt.Errorf("cluster %s: %w", a.name, errBreakerOpen)
	}
	callCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	select {
	case a.slots <- struct{}{}:
	case <-callCtx.Done():
		return fmt.Errorf("cluster %s: no call slot free: %w", a.name, callCtx.Err())
	}
	defer func() { <-a.slots }()
	if err := a.limiter.Wait(callCtx); err != nil {
		return fmt.Errorf("cluster %s: rate limit: %w", a.name, err)
	}
	a.calls.Add(1)
	if write {
		a.writes.Add(1)
	}
	err := call(callCtx, api)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil:
		a.fails = 0
	case ctx.Err() == nil && clusterFault(err):
		// Only failures of the cluster count: our own deadline or a 4xx answer says nothing about it.
		a.fails++
	}
	return err
}

// clusterFault reports whether err says the cluster is unwell: no answer, a timeout, or a 5xx.
func clusterFault(err error) bool {
	var apiErr *reapi.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= http.StatusInternalServerError
	}
	return true
}

func (a *limitedAPI) ListDBs(ctx context.Context, fields ...string) (out []reapi.DB, err error) {
	err = a.do(ctx, a.timeout, false, func(ctx context.Context, api reconcile.ClusterAPI) error {
		out, err = api.ListDBs(ctx, fields...)
		return err
	})
	return out, err
}

func (a *limitedAPI) GetDB(ctx context.Context, uid int, fields ...string) (out reapi.DB, err error) {
	err = a.do(ctx, a.timeout, false, func(ctx context.Context, api reconcile.ClusterAPI) error {
		out, err = api.GetDB(ctx, uid, fields...)
		return err
	})
	return out, err
}

func (a *limitedAPI) UpdateDB(ctx context.Context, uid int, upd reapi.DBUpdate, dryRun bool) (out reapi.DB, err error) {
	err = a.do(ctx, a.timeout, !dryRun, func(ctx context.Context, api reconcile.ClusterAPI) error {
		out, err = api.UpdateDB(ctx, uid, upd, dryRun)
		return err
	})
	return out, err
}

func (a *limitedAPI) GetCluster(ctx context.Context) (out reapi.Cluster, err error) {
	err = a.do(ctx, a.timeout, false, func(ctx context.Context, api reconcile.ClusterAPI) error {
		out, err = api.GetCluster(ctx)
		return err
	})
	return out, err
}

// WaitForDB polls until a change is applied: it gets four call budgets.
func (a *limitedAPI) WaitForDB(ctx context.Context, uid int, actionUID string, poll time.Duration) (out reapi.DB, err error) {
	err = a.do(ctx, 4*a.timeout, false, func(ctx context.Context, api reconcile.ClusterAPI) error {
		out, err = api.WaitForDB(ctx, uid, actionUID, poll)
		return err
	})
	return out, err
}
