package lambdaapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replica-tls/replica-tls/shared/lease"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// runLeases gives the core leases held in DynamoDB in the name of one run.
type runLeases struct {
	store *lease.Store
	owner string // the run id: who holds a lease is visible in the table and in busy errors
	wait  time.Duration
}

var _ reconcile.Leases = runLeases{}

func (l runLeases) Hold(ctx context.Context, resource string, fn func(ctx context.Context) error) error {
	ran := false
	_, err := l.store.Hold(ctx, resource, l.owner, l.wait, func(ctx context.Context) error {
		ran = true
		return fn(ctx)
	})
	if ran || err == nil {
		return err
	}
	var busy *lease.BusyError
	if errors.As(err, &busy) {
		return &reconcile.BusyError{Resource: resource, Holder: busy.Holder,
			Err: fmt.Errorf("waited %s", busy.Waited.Round(time.Millisecond))}
	}
	if errors.Is(err, lease.ErrUnavailable) {
		return leaseUnavailable{err}
	}
	return err
}

// leaseUnavailable: the lease table could not be used, so nothing was written (fail closed).
type leaseUnavailable struct{ err error }

func (e leaseUnavailable) Error() string {
	return "lease table unavailable, nothing was changed: " + e.err.Error()
}
func (e leaseUnavailable) Unwrap() error     { return e.err }
func (e leaseUnavailable) ErrorCode() string { return "lease_unavailable" }
