package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Leases coordinates writers across concurrent runs. The REST API has no conditional write and a PUT
// replaces whole lists (authentication_ssl_client_certs, replica_sources), so two runs writing one
// database from two reads would lose each other's change: every write is made while holding the
// lease on what it writes, and planned from a read made under that lease (docs/architecture.md,
// "Concurrency").
//
// Production passes a DynamoDB-backed implementation (shared/lease through the composition root);
// ProcessLeases serves a single process.
type Leases interface {
	// Hold runs fn while holding the lease on resource. fn's ctx ends when the lease is lost. An
	// error that says the lease could not be had in time carries ErrorCode() "busy"; one that says
	// the lease store failed carries "lease_unavailable": in both cases fn did not run.
	Hold(ctx context.Context, resource string, fn func(ctx context.Context) error) error
}

// DBLease is the lease name of a database's TLS settings: on a source its tls_mode, client
// authentication and trust list; on a destination its replica_sources.
func DBLease(e LinkEnd) string { return "db/" + e.Cluster + "/" + strconv.Itoa(e.DB) }

// CertLease is the lease name of a cluster's syncer or proxy certificate.
func CertLease(cluster, kind string) string { return "cert/" + cluster + "/" + kind }

// ProcessLeases returns leases that coordinate the goroutines of one process only: what a Reconciler
// built without Config.Leases uses (package tests, tools). The Lambda functions always pass leases
// shared by every invocation.
func ProcessLeases() Leases { return &processLeases{held: map[string]chan struct{}{}} }

type processLeases struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

func (p *processLeases) Hold(ctx context.Context, resource string, fn func(ctx context.Context) error) error {
	for {
		p.mu.Lock()
		ch, busy := p.held[resource]
		if !busy {
			ch = make(chan struct{})
			p.held[resource] = ch
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return &BusyError{Resource: resource, Err: context.Cause(ctx)}
		}
	}
	defer func() {
		p.mu.Lock()
		close(p.held[resource])
		delete(p.held, resource)
		p.mu.Unlock()
	}()
	return fn(ctx)
}

// BusyError says another run held a lease for longer than this run could wait: nothing was changed,
// and the platform retries the event like any other failure.
type BusyError struct {
	Resource string
	Holder   string // the run holding it, when known
	Err      error
}

func (e *BusyError) Error() string {
	msg := "busy: another run holds the lease on " + e.Resource
	if e.Holder != "" {
		msg += " (run " + e.Holder + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + "; nothing was changed"
}

func (e *BusyError) Unwrap() error { return e.Err }

// ErrorCode names the failure in audit events.
func (e *BusyError) ErrorCode() string { return "busy" }

// IsBusy reports whether err says a lease could not be had in time.
func IsBusy(err error) bool {
	var b *BusyError
	if errors.As(err, &b) {
		return true
	}
	var c coded
	return errors.As(err, &c) && c.ErrorCode() == "busy"
}

// coded is an error that names its own audit code (a lease adapter's busy or unavailable errors).
type coded interface {
	error
	ErrorCode() string
}

// leaseErr wraps a failure to take a lease with what was being done.
func leaseErr(resource string, err error) error {
	return fmt.Errorf("take the lease on %s: %w", resource, err)
}
