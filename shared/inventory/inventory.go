// Package inventory records the syncer and proxy certificates a cluster presents into Secrets Manager,
// so that Secrets Manager stays the source of truth even when a certificate was replaced outside
// replica-tls (UI, rladmin). A presented certificate that matches any staged version (AWSCURRENT,
// AWSPENDING during a rotation, AWSPREVIOUS) is already known and changes nothing.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// ClusterReader reads the certificates a cluster presents.
type ClusterReader interface {
	GetCluster(ctx context.Context) (reapi.Cluster, error)
}

// Store is the part of the Secrets Manager store inventory needs.
type Store interface {
	CertVersions(ctx context.Context, cluster string, kind secretstore.Kind) ([]secretstore.CertVersion, error)
	PutCert(ctx context.Context, cluster string, kind secretstore.Kind, in secretstore.PutCert) (string, error)
}

// Auditor publishes audit events; nil means the event was accepted.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// Result is what happened to one certificate.
type Result struct {
	Cluster   string
	Kind      secretstore.Kind
	Outcome   audit.Outcome // skipped, succeeded, planned, rejected, failed
	Cert      *certs.Summary
	VersionID string // the new version, when one was stored
	PEM       string // the presented certificate (public), when it parsed
	Reason    string
}

// Recorder compares what clusters present with Secrets Manager.
type Recorder struct {
	Store   Store
	Auditor Auditor
	Now     func() time.Time
}

// Record reads the cluster's presented syncer and proxy certificates and stores each one that
// Secrets Manager does not have as a new AWSCURRENT version (or, with dryRun, only reports it).
func (r *Recorder) Record(ctx context.Context, cl ClusterReader, name string, dryRun bool) ([]Result, error) {
	start := r.now()
	info, err := cl.GetCluster(ctx)
	if err != nil {
		err = fmt.Errorf("read certificates presented by cluster %s: %w", name, err)
		r.audit(ctx, audit.Event{Step: "record-certificates", Outcome: audit.Failed, Cluster: name, DryRun: dryRun,
			Error: &audit.ErrorInfo{Code: codeOf(err), Message: err.Error()}, DurationMs: r.since(start)})
		return nil, err
	}
	return r.RecordPresented(ctx, name, info.SyncerCertificate, info.ProxyCertificate, dryRun)
}

// RecordPresented is Record for certificates already read from the cluster (a fleet snapshot).
// Both certificates are looked at even when the first fails; every outcome is audited.
func (r *Recorder) RecordPresented(ctx context.Context, name, syncerPEM, proxyPEM string, dryRun bool) ([]Result, error) {
	var out []Result
	var errs []error
	for _, k := range []struct {
		kind secretstore.Kind
		pem  string
	}{{secretstore.Syncer, syncerPEM}, {secretstore.Proxy, proxyPEM}} {
		res, err := r.recordOne(ctx, name, k.kind, k.pem, dryRun)
		out = append(out, res)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func (r *Recorder) recordOne(ctx context.Context, name string, kind secretstore.Kind, presented string, dryRun bool) (Result, error) {
	start := r.now()
	step := "record-" + string(kind) + "-certificate"
	res := Result{Cluster: name, Kind: kind}
	ev := func(o audit.Outcome) audit.Event {
		return audit.Event{DetailType: audit.DetailRegistered, Step: step, Outcome: o, Cluster: name, DryRun: dryRun,
			Certificate: res.Cert, DurationMs: r.since(start)}
	}
	c, err := certs.ParseOne(presented)
	if err != nil {
		err = fmt.Errorf("cluster %s presents an unusable %s certificate: %w", name, kind, err)
		res.Outcome, res.Reason = audit.Rejected, err.Error()
		e := ev(audit.Rejected)
		e.Error = &audit.ErrorInfo{Code: "invalid_certificate", Message: err.Error()}
		r.audit(ctx, e)
		return res, err
	}
	sum := c.Summary()
	res.Cert, res.PEM = &sum, c.PEM

	versions, err := r.Store.CertVersions(ctx, name, kind)
	if err != nil && !errors.Is(err, secretstore.ErrNotFound) {
		err = fmt.Errorf("read stored %s certificates of %s: %w", kind, name, err)
		res.Outcome, res.Reason = audit.Failed, err.Error()
		e := ev(audit.Failed)
		e.Error = &audit.ErrorInfo{Code: codeOf(err), Message: err.Error()}
		r.audit(ctx, e)
		return res, err
	}
	for _, v := range versions {
		if certs.SameCert(v.Certificate, presented) {
			res.Outcome = audit.Skipped
			res.Reason = fmt.Sprintf("already stored as version %s (%v)", v.VersionID, v.Stages)
			e := ev(audit.Skipped)
			e.Details = map[string]any{"version_id": v.VersionID, "stages": v.Stages}
			if err := r.Auditor.Record(ctx, e); err != nil {
				return res, fmt.Errorf("audit %s: %w", step, err)
			}
			return res, nil
		}
	}
	change := fmt.Sprintf("store %s certificate %s (%s, expires %s) as the new AWSCURRENT version",
		kind, sum.Fingerprint[:16], sum.Subject, sum.NotAfter.Format(time.DateOnly))
	if c.CheckValidity(r.now()) != nil {
		change += " (note: the cluster presents a certificate that is not currently valid)"
	}
	if dryRun {
		res.Outcome, res.Reason = audit.Planned, change
		e := ev(audit.Planned)
		e.Changes = []string{change}
		if err := r.Auditor.Record(ctx, e); err != nil {
			return res, fmt.Errorf("audit %s: %w", step, err)
		}
		return res, nil
	}
	started := ev(audit.Started)
	started.Changes = []string{change}
	if err := r.Auditor.Record(ctx, started); err != nil {
		return res, fmt.Errorf("audit %s (nothing stored): %w", step, err)
	}
	vid, err := r.Store.PutCert(ctx, name, kind, secretstore.PutCert{Certificate: c.PEM})
	if err != nil {
		err = fmt.Errorf("store %s certificate of %s: %w", kind, name, err)
		res.Outcome, res.Reason = audit.Failed, err.Error()
		e := ev(audit.Failed)
		e.Error = &audit.ErrorInfo{Code: codeOf(err), Message: err.Error()}
		r.audit(ctx, e)
		return res, err
	}
	res.Outcome, res.VersionID, res.Reason = audit.Succeeded, vid, change
	e := ev(audit.Succeeded)
	e.Changes = []string{change}
	e.Details = map[string]any{"version_id": vid}
	if err := r.Auditor.Record(ctx, e); err != nil {
		return res, fmt.Errorf("audit %s outcome (version %s was stored): %w", step, vid, err)
	}
	return res, nil
}

// audit records an outcome event on a path that already failed; a failure to audit is secondary.
func (r *Recorder) audit(ctx context.Context, e audit.Event) { _ = r.Auditor.Record(ctx, e) }

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recorder) since(t time.Time) int64 { return r.now().Sub(t).Milliseconds() }

func codeOf(err error) string {
	var apiErr *reapi.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return apiErr.Code
	case errors.As(err, &apiErr):
		return fmt.Sprintf("http_%d", apiErr.StatusCode)
	case errors.Is(err, secretstore.ErrInvalid):
		return "invalid_secret"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	default:
		return "error"
	}
}
