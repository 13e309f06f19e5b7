// Package sweep is replica-tls's scheduled sweep: it converges every Replica Of link of the fleet
// (also links no event announced), reports drift that was repaired, warns once per threshold about
// certificates approaching expiry, and sums it all up in one audit event. It is level-triggered
// like every run: a sweep cut short by its deadline reports what it left, and the next one
// finishes it.
//
// A sweep reads each registered cluster twice (GET /v1/cluster and one GET /v1/bdbs with the
// fields filter); a converged fleet costs nothing more on any cluster. Links that share a database
// are converged one after another, groups of them concurrently, with a rate limit and a bound on
// calls in flight per cluster, each call bounded in time.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/inventory"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// Audit steps of a sweep (the reconciler's own steps come on top).
const (
	StepSweep       = "sweep"                    // the summary
	StepSelect      = "select-links"             // a request naming what does not exist
	StepLoadCluster = "load-cluster"             // a registered cluster that could not be read
	StepDrift       = "detect-drift"             // drift found on one side of a link
	StepExpiry      = "check-certificate-expiry" // a certificate within a threshold of expiry
)

// keepNotices is how long after a certificate's expiry its notices are remembered.
const keepNotices = 400 * 24 * time.Hour

// auditGrace bounds recording one audit event once the work's context has ended.
const auditGrace = 5 * time.Second

// maxListed bounds the lists a summary event carries (the response lists everything).
const maxListed = 50

// ReconcilerFor builds the reconciler of one sweep (lambdaapp.App.Reconciler): it audits through rec
// and, in a dry run, plans as if the certificates planned were stored.
type ReconcilerFor func(rec *audit.Recorder, planned ...inventory.Result) *reconcile.Reconciler

// CertRecorder records the certificates the fleet's clusters present into Secrets Manager
// (lambdaapp.App.RecordFleetCertificates) and returns warnings.
type CertRecorder func(ctx context.Context, rec *audit.Recorder, fleet *reconcile.Fleet, dryRun bool) ([]inventory.Result, []string)

// Config wires a Sweeper.
type Config struct {
	Registry reconcile.Registry
	Certs    reconcile.CertSource
	// Notices remembers the expiry notices sent; nil: expiring certificates are only reported in
	// the response and the summary, never as events (they could not be sent once).
	Notices Notices
	// RecordCertificates, when set, runs before the links are reconciled so that certificates
	// replaced outside replica-tls, and new clusters', are in Secrets Manager.
	RecordCertificates CertRecorder
	// Reconciler, when set, builds the reconciler (the function's, with the project-wide trust grace
	// period); nil: one is built from Registry, Certs and Options (Poll, PruneAfter).
	Reconciler ReconcilerFor
	// Policy for every link: scope (never downgraded) and client authentication. Zero:
	// reconcile.DefaultPolicy(). DryRun comes from each Request.
	Policy  reconcile.Policy
	Options Options
	Now     func() time.Time // default time.Now; certificate validity and expiry use it
	Logger  *slog.Logger     // default: discard
}

// Sweeper runs sweeps. It holds no state between runs beyond its Config.
type Sweeper struct {
	cfg Config
}

// New returns a Sweeper, filling Config defaults.
func New(cfg Config) *Sweeper {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Policy.Scope == "" {
		cfg.Policy = reconcile.DefaultPolicy()
	}
	cfg.Options = cfg.Options.withDefaults()
	return &Sweeper{cfg: cfg}
}

// ClusterFailure is a registered cluster the sweep could not read.
type ClusterFailure struct {
	Cluster string `json:"cluster"`
	Code    string `json:"code"`
	Error   string `json:"error"` // redacted
}

// LinkCounts classifies the links a sweep saw.
type LinkCounts struct {
	Seen     int `json:"seen"`
	InSync   int `json:"in_sync"`  // nothing to change
	Repaired int `json:"repaired"` // changed and verified (drift repaired or a new link secured)
	Planned  int `json:"planned"`  // dry run: would have been changed
	New      int `json:"newly_secured"`
	Failed   int `json:"failed"`
	Rejected int `json:"rejected"` // refused as bad input (unresolvable source, unusable certificate)
	Skipped  int `json:"skipped"`  // not started for lack of time
}

// CertCounts sums up the expiry check.
type CertCounts struct {
	Checked  int `json:"checked"`
	Expiring int `json:"expiring"` // within a threshold, not expired
	Expired  int `json:"expired"`
	Notified int `json:"notified"` // notices sent by this sweep
}

// Report is what a sweep did; it holds no secret material.
type Report struct {
	RunID          string           `json:"run_id"`
	Scope          string           `json:"scope"`
	DryRun         bool             `json:"dry_run"`
	Outcome        audit.Outcome    `json:"outcome"`
	Clusters       int              `json:"clusters"`
	ClustersFailed []ClusterFailure `json:"clusters_failed"`
	Links          LinkCounts       `json:"link_counts"`
	Drift          int              `json:"drift_detected"` // sides of links found drifted
	Certificates   CertCounts       `json:"certificates"`
	Expiring       []ExpiryNotice   `json:"expiring"`
	Calls          int              `json:"cluster_api_calls"` // WaitForDB's polls count once
	Writes         int              `json:"cluster_api_writes"`
	StoppedEarly   bool             `json:"stopped_early"`
	Left           []string         `json:"left"` // links not started, "dest <- source"
	Warnings       []string         `json:"warnings,omitempty"`
	DurationMs     int64            `json:"duration_ms"`

	// Reports are the links reconciled, for the caller's own rendering.
	Reports []reconcile.LinkReport `json:"-"`
}

// Run sweeps what req names. The error is for a sweep that could not do its job: a request naming
// an unknown cluster or database (a *reconcile.RejectError, audited as rejected), an unreadable
// registry, no registered cluster readable, or a summary the audit trail did not accept. Failing
// clusters and links are reported, audited and left to the next sweep.
func (s *Sweeper) Run(ctx context.Context, rec *audit.Recorder, req Request) (Report, error) {
	sw := &run{
		s: s, rec: rec, req: req, memo: newCertMemo(), start: time.Now(),
		rep: Report{RunID: rec.Run().ID, Scope: req.Scope(), DryRun: req.DryRun,
			ClustersFailed: []ClusterFailure{}, Expiring: []ExpiryNotice{}, Left: []string{}},
	}
	workCtx, cancel := workContext(ctx, s.cfg.Options.Reserve)
	defer cancel()
	err := sw.sweep(workCtx)
	var rej *reconcile.RejectError
	if errors.As(err, &rej) {
		return sw.rep, err
	}
	if serr := sw.summarize(ctx, err); serr != nil {
		err = errors.Join(err, serr)
	}
	return sw.rep, err
}

// workContext ends reserve before ctx's deadline, leaving time to record what happened.
func workContext(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

// run is one sweep's state.
type run struct {
	s     *Sweeper
	rec   *audit.Recorder
	req   Request
	memo  *certMemo
	start time.Time
	lim   *limitedRegistry

	mu  sync.Mutex // guards rep while groups of links finish
	rep Report

	stopReason string
}

func (sw *run) warn(format string, args ...any) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.rep.Warnings = append(sw.rep.Warnings, audit.Redact(fmt.Sprintf(format, args...)))
}

// sweep does the work, within ctx.
func (sw *run) sweep(ctx context.Context) error {
	cfg, opts := sw.s.cfg, sw.s.cfg.Options
	if ctx.Err() != nil {
		sw.rep.StoppedEarly = true
		sw.stopReason = fmt.Sprintf("less than %s was left before the deadline: nothing was read", opts.Reserve)
		return nil
	}
	names, err := cfg.Registry.ClusterNames(ctx)
	if err != nil {
		return fmt.Errorf("list registered clusters: %w", err)
	}
	sw.rep.Clusters = len(names)
	if sw.req.Cluster != "" && !slices.Contains(names, sw.req.Cluster) {
		return sw.reject(ctx, reconcile.CodeUnknownCluster, fmt.Sprintf("cluster %q is not registered", sw.req.Cluster))
	}

	sw.lim = newLimitedRegistry(cfg.Registry, opts)
	fleet, err := reconcile.LoadFleet(ctx, sw.lim, names)
	if err != nil {
		return fmt.Errorf("read the fleet: %w", err)
	}
	sw.clusterFailures(ctx, fleet)
	if len(names) > 0 && len(fleet.Clusters) == 0 {
		f := sw.rep.ClustersFailed[0]
		return fmt.Errorf("none of the %d registered clusters could be read (%s: %s)", len(names), f.Cluster, f.Error)
	}
	links, err := sw.selectLinks(ctx, fleet)
	if err != nil {
		return err
	}
	sw.rep.Links.Seen = len(links)

	var planned []inventory.Result
	if cfg.RecordCertificates != nil {
		var warnings []string
		planned, warnings = cfg.RecordCertificates(ctx, sw.rec, sw.involved(fleet, links), sw.req.DryRun)
		for _, w := range warnings {
			sw.warn("record presented certificates: %s", w)
		}
	}
	sw.checkExpiry(ctx, fleet)
	sw.reconcile(ctx, fleet, links, planned)
	return nil
}

// reject refuses a request naming what does not exist: one rejected event, no change.
func (sw *run) reject(ctx context.Context, code, msg string) error {
	err := &reconcile.RejectError{Code: code, Message: msg}
	e := audit.Event{Step: StepSelect, Outcome: audit.Rejected, Cluster: sw.req.Cluster, Database: sw.req.Database,
		Error: &audit.ErrorInfo{Code: code, Message: msg}, DurationMs: time.Since(sw.start).Milliseconds()}
	if aerr := sw.rec.Record(ctx, e); aerr != nil {
		return errors.Join(err, aerr)
	}
	sw.rep.Outcome = audit.Rejected
	return err
}

// clusterFailures reports and audits every cluster that could not be read.
func (sw *run) clusterFailures(ctx context.Context, fleet *reconcile.Fleet) {
	names := make([]string, 0, len(fleet.Errors))
	for n := range fleet.Errors {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ferr := fleet.Errors[n]
		f := ClusterFailure{Cluster: n, Code: failureCode(ferr), Error: audit.Redact(ferr.Error())}
		sw.rep.ClustersFailed = append(sw.rep.ClustersFailed, f)
		e := audit.Event{Step: StepLoadCluster, Outcome: audit.Failed, Cluster: n, DryRun: sw.req.DryRun,
			Error: &audit.ErrorInfo{Code: f.Code, Message: f.Error}, DurationMs: time.Since(sw.start).Milliseconds()}
		if err := sw.rec.Record(ctx, e); err != nil {
			sw.warn("audit the failure of cluster %s: %v", n, err)
		}
	}
}

// failureCode names why a cluster failed, for operators and alarms.
func failureCode(err error) string {
	var apiErr *reapi.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return apiErr.Code
	case errors.As(err, &apiErr):
		return fmt.Sprintf("http_%d", apiErr.StatusCode)
	case errors.Is(err, errBreakerOpen):
		return "circuit_open"
	case errors.As(err, &opErr):
		return "unreachable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, reconcile.ErrUnknownCluster):
		return reconcile.CodeUnknownCluster
	}
	return "error"
}

// selectLinks narrows the fleet's links to the request: those touching the named cluster, or the
// named database, as source or destination.
func (sw *run) selectLinks(ctx context.Context, fleet *reconcile.Fleet) ([]reconcile.Link, error) {
	all := fleet.Links()
	if sw.req.Cluster == "" {
		return all, nil
	}
	cs, loaded := fleet.Clusters[sw.req.Cluster]
	if loaded && sw.req.Database > 0 {
		if _, ok := cs.DB(sw.req.Database); !ok {
			return nil, sw.reject(ctx, reconcile.CodeUnknownDatabase, fmt.Sprintf("cluster %s has no database %d", sw.req.Cluster, sw.req.Database))
		}
	}
	touches := func(e reconcile.LinkEnd) bool {
		return e.Cluster == sw.req.Cluster && (sw.req.Database == 0 || e.DB == sw.req.Database)
	}
	var out []reconcile.Link
	for _, l := range all {
		if touches(l.Dest) || (l.Err == nil && touches(l.Source)) {
			out = append(out, l)
		}
	}
	return out, nil
}

// involved is the part of the fleet whose certificates a narrowed sweep records: the clusters of
// its links and the named one.
func (sw *run) involved(fleet *reconcile.Fleet, links []reconcile.Link) *reconcile.Fleet {
	if sw.req.Cluster == "" {
		return fleet
	}
	sub := &reconcile.Fleet{Clusters: map[string]*reconcile.ClusterState{}, Errors: map[string]error{}}
	keep := func(name string) {
		if cs, ok := fleet.Clusters[name]; ok {
			sub.Clusters[name] = cs
		}
	}
	keep(sw.req.Cluster)
	for _, l := range links {
		keep(l.Dest.Cluster)
		if l.Err == nil {
			keep(l.Source.Cluster)
		}
	}
	return sub
}

// checkExpiry reports the certificates within a threshold of expiry and sends each notice once.
func (sw *run) checkExpiry(ctx context.Context, fleet *reconcile.Fleet) {
	cfg := sw.s.cfg
	now := cfg.Now()
	uses := collectCerts(fleet, sw.req.Cluster, sw.req.Database, sw.memo)
	sw.rep.Certificates.Checked = len(uses)
	if cfg.Notices == nil && len(uses) > 0 {
		sw.warn("no expiry notice table configured: expiring certificates are reported here only")
	}
	for _, u := range uses {
		st, ok := due(u.cert.NotAfter, now, cfg.Options.Thresholds)
		if !ok {
			continue
		}
		n := ExpiryNotice{Fingerprint: u.cert.Fingerprint, Subject: u.cert.Subject, NotAfter: u.cert.NotAfter,
			Kinds: u.kinds, Where: u.where, Expired: st.Expired, Threshold: st.Threshold, DaysLeft: st.DaysLeft}
		if st.Expired {
			sw.rep.Certificates.Expired++
		} else {
			sw.rep.Certificates.Expiring++
		}
		if cfg.Notices != nil {
			if err := sw.notify(ctx, u, st, &n); err != nil {
				n.Error = audit.Redact(err.Error())
				sw.warn("expiry notice for sha256:%s: %v", short(u.cert.Fingerprint), err)
			}
		}
		if n.Notified {
			sw.rep.Certificates.Notified++
		}
		sw.rep.Expiring = append(sw.rep.Expiring, n)
	}
	sortNotices(sw.rep.Expiring)
}

// notify sends one notice unless an earlier sweep did: the claim comes first, so two sweeps at once
// send it once; a notice whose event was not accepted is released for the next sweep. A dry run
// only asks whether it would be sent, and audits it as planned.
func (sw *run) notify(ctx context.Context, u certUse, st stage, n *ExpiryNotice) error {
	notices, key := sw.s.cfg.Notices, st.key(u.cert.Fingerprint)
	if sw.req.DryRun {
		claimed, err := notices.Claimed(ctx, key)
		if err != nil || claimed {
			return err
		}
		if err := sw.rec.Record(ctx, sw.expiryEvent(u, st, audit.Planned)); err != nil {
			return err
		}
		n.Notified = true
		return nil
	}
	claimed, err := notices.Claim(ctx, Notice{Key: key, Fingerprint: u.cert.Fingerprint, Stage: st.label(),
		RunID: sw.rep.RunID, KeepUntil: u.cert.NotAfter.Add(keepNotices)})
	if err != nil || !claimed {
		return err
	}
	if err := sw.rec.Record(ctx, sw.expiryEvent(u, st, audit.Succeeded)); err != nil {
		if rerr := notices.Release(ctx, key); rerr != nil {
			return fmt.Errorf("%w (and the claim could not be released, so this notice is lost: %v)", err, rerr)
		}
		return err
	}
	n.Notified = true
	return nil
}

func (sw *run) expiryEvent(u certUse, st stage, o audit.Outcome) audit.Event {
	cert := u.cert
	what := fmt.Sprintf("%s certificate %q expires within %d days", strings.Join(u.kinds, "/"), cert.Subject, st.Threshold)
	if st.Expired {
		what = fmt.Sprintf("%s certificate %q has expired", strings.Join(u.kinds, "/"), cert.Subject)
	}
	return audit.Event{
		DetailType: audit.DetailExpiring, Step: StepExpiry, Outcome: o,
		Cluster: u.cluster, Database: u.db, Certificate: &cert, Changes: []string{what},
		Details: map[string]any{
			"stage": st.label(), "threshold_days": st.Threshold, "days_left": st.DaysLeft, "expired": st.Expired,
			"kinds": u.kinds, "where": u.where,
		},
		DurationMs: time.Since(sw.start).Milliseconds(),
	}
}

// reconcile converges the links, emits drift events as groups finish, and counts.
func (sw *run) reconcile(ctx context.Context, fleet *reconcile.Fleet, links []reconcile.Link, planned []inventory.Result) {
	cfg, opts := sw.s.cfg, sw.s.cfg.Options
	pol := cfg.Policy
	pol.DryRun = sw.req.DryRun
	// The sweep reads the fleet, so it alone may remove certificates no destination needs (and
	// superseded ones past their grace period, when it read every registered cluster).
	pol.Prune = true

	states := map[audit.Link]linkState{}
	for _, l := range links {
		if st, ok := linkStateOf(fleet, l, sw.memo, pol.ClientAuth); ok {
			states[*l.Audit()] = st
		}
	}
	var r *reconcile.Reconciler
	if cfg.Reconciler != nil {
		// Its registry only matters for clients the fleet lacks: the fleet's are the limited ones.
		r = cfg.Reconciler(sw.rec, planned...)
	} else {
		r = reconcile.New(reconcile.Config{
			Registry: sw.lim, Certs: cfg.Certs, Auditor: sw.rec, Now: cfg.Now, Poll: opts.Poll, Logger: cfg.Logger,
			PruneAfter: opts.PruneAfter,
		})
	}
	res, err := r.ReconcileFleet(ctx, fleet, links, pol, reconcile.FleetOptions{
		Concurrency: opts.Concurrency, StopMargin: opts.StopMargin,
		Done: func(reps []reconcile.LinkReport) { sw.drift(ctx, reps, states) },
	})
	if err != nil {
		sw.warn("reconcile: %v", err)
	}
	sw.rep.Reports = res.Links
	for _, lr := range res.Links {
		switch classify(lr) {
		case "rejected":
			sw.rep.Links.Rejected++
		case "failed":
			sw.rep.Links.Failed++
		case "repaired":
			sw.rep.Links.Repaired++
		case "planned":
			sw.rep.Links.Planned++
		default:
			sw.rep.Links.InSync++
		}
		if c := classify(lr); (c == "repaired" || c == "planned") && !states[lr.Link].secured() {
			if _, ok := states[lr.Link]; ok {
				sw.rep.Links.New++
			}
		}
	}
	sw.rep.Links.Skipped = len(res.Left)
	for _, l := range res.Left {
		sw.rep.Left = append(sw.rep.Left, l.String())
	}
	if len(res.Left) > 0 {
		sw.rep.StoppedEarly = true
		sw.stopReason = fmt.Sprintf("%d of %d links not started: less than %s was left before the work deadline", len(res.Left), len(links), opts.StopMargin)
	}
}

// classify sums up one link.
func classify(lr reconcile.LinkReport) string {
	var rej *reconcile.RejectError
	switch {
	case lr.Err != nil && errors.As(lr.Err, &rej):
		return "rejected"
	case lr.Err != nil:
		return "failed"
	case lr.Source.Outcome == audit.Succeeded || lr.Destination.Outcome == audit.Succeeded:
		return "repaired"
	case lr.Source.Outcome == audit.Planned || lr.Destination.Outcome == audit.Planned:
		return "planned"
	}
	return "in_sync"
}

// drift audits the drifted sides of a finished group: once per source database (whatever number
// of its links showed it) and once per destination entry, with the reconciler's before, after and
// changes, and the outcome of the repair.
func (sw *run) drift(ctx context.Context, reps []reconcile.LinkReport, states map[audit.Link]linkState) {
	type sourceDrift struct {
		link     audit.Link
		side     reconcile.SideResult
		findings []string
	}
	var order []reconcile.LinkEnd
	sources := map[reconcile.LinkEnd]*sourceDrift{}
	for _, lr := range reps {
		st, ok := states[lr.Link]
		if !ok {
			continue
		}
		src, dst := detectDrift(st)
		if len(src) > 0 {
			key := reconcile.LinkEnd{Cluster: lr.Link.SourceCluster, DB: lr.Link.SourceDatabase}
			sd, seen := sources[key]
			if !seen {
				sd = &sourceDrift{link: lr.Link, side: lr.Source}
				sources[key] = sd
				order = append(order, key)
			}
			for _, f := range src {
				if !slices.Contains(sd.findings, f) {
					sd.findings = append(sd.findings, f)
				}
			}
		}
		if len(dst) > 0 {
			side := lr.Destination
			if side.Outcome == "" && lr.Err != nil {
				side.Err = lr.Err // the source failed: the destination was not attempted
			}
			sw.driftEvent(ctx, lr.Link, "destination", lr.Link.DestinationCluster, lr.Link.DestinationDB, side, dst)
		}
	}
	for _, key := range order {
		sd := sources[key]
		sw.driftEvent(ctx, sd.link, "source", key.Cluster, key.DB, sd.side, sd.findings)
	}
}

func (sw *run) driftEvent(ctx context.Context, link audit.Link, which, cluster string, db int, side reconcile.SideResult, findings []string) {
	o := side.Outcome
	switch o {
	case audit.Skipped:
		return // nothing needed changing after all: the snapshot was older than the read
	case audit.Succeeded, audit.Planned, audit.Rejected:
	default:
		o = audit.Failed
	}
	e := audit.Event{
		DetailType: audit.DetailDrift, Step: StepDrift, Outcome: o, Cluster: cluster, Database: db, Link: &link,
		Changes: side.Changes,
		Details: map[string]any{"side": which, "drift": findings, "repaired": o == audit.Succeeded},
	}
	if !emptyState(side.Before) {
		e.Before = &side.Before
	}
	if !emptyState(side.After) {
		e.After = &side.After
	}
	if side.Err != nil && o != audit.Succeeded && o != audit.Planned {
		e.Error = &audit.ErrorInfo{Code: "not_repaired", Message: side.Err.Error()}
	}
	if err := sw.rec.Record(ctx, e); err != nil {
		sw.warn("audit drift on %s/%d: %v", cluster, db, err)
	}
	sw.mu.Lock()
	sw.rep.Drift++
	sw.mu.Unlock()
}

func emptyState(s audit.State) bool {
	return s.TLSMode == "" && s.ClientAuthentication == "" && len(s.TrustedCerts) == 0 &&
		s.Encryption == nil && s.ServerCert == nil && s.LinkStatus == ""
}

// summarize finishes the report and records the summary event. err is why the sweep could not do
// its job, if it could not.
func (sw *run) summarize(ctx context.Context, err error) error {
	rep := &sw.rep
	if sw.lim != nil {
		rep.Calls, rep.Writes = sw.lim.totals()
	}
	rep.DurationMs = time.Since(sw.start).Milliseconds()
	e := audit.Event{DetailType: audit.DetailSweep, Step: StepSweep, Outcome: audit.Succeeded, DryRun: sw.req.DryRun, Cluster: sw.req.Cluster, Database: sw.req.Database}
	switch {
	case err != nil:
		e.Outcome = audit.Failed
		e.Error = &audit.ErrorInfo{Code: failureCode(err), Message: err.Error()}
	case len(rep.ClustersFailed) > 0 || rep.Links.Failed > 0 || rep.Links.Rejected > 0:
		e.Outcome = audit.Failed
		e.Error = &audit.ErrorInfo{Code: "incomplete", Message: fmt.Sprintf("%d cluster(s) could not be read, %d link(s) failed, %d rejected",
			len(rep.ClustersFailed), rep.Links.Failed, rep.Links.Rejected)}
	case rep.StoppedEarly:
		e.Outcome = audit.Failed
		e.Error = &audit.ErrorInfo{Code: "stopped_early", Message: sw.stopReason}
	}
	if rep.StoppedEarly && e.Error != nil && e.Error.Code != "stopped_early" {
		e.Error.Message += "; " + sw.stopReason
	}
	rep.Outcome = e.Outcome
	failed := make([]any, 0, len(rep.ClustersFailed))
	for _, f := range rep.ClustersFailed {
		failed = append(failed, f.Cluster)
	}
	left := make([]any, 0, min(len(rep.Left), maxListed))
	for _, l := range rep.Left[:min(len(rep.Left), maxListed)] {
		left = append(left, l)
	}
	e.Details = map[string]any{
		"scope": rep.Scope, "clusters": rep.Clusters, "clusters_failed": len(rep.ClustersFailed), "failed_clusters": failed,
		"links_seen": rep.Links.Seen, "links_in_sync": rep.Links.InSync, "links_repaired": rep.Links.Repaired,
		"links_planned": rep.Links.Planned, "links_newly_secured": rep.Links.New, "links_failed": rep.Links.Failed,
		"links_rejected": rep.Links.Rejected, "links_skipped": rep.Links.Skipped, "left": left,
		"drift_detected": rep.Drift, "certificates_checked": rep.Certificates.Checked,
		"certificates_expiring": rep.Certificates.Expiring, "certificates_expired": rep.Certificates.Expired,
		"expiry_notices_sent": rep.Certificates.Notified, "cluster_api_calls": rep.Calls, "cluster_api_writes": rep.Writes,
		"stopped_early": rep.StoppedEarly,
	}
	e.DurationMs = rep.DurationMs
	if aerr := sw.rec.Record(ctx, e); aerr != nil {
		return fmt.Errorf("record the sweep summary: %w", aerr)
	}
	return nil
}

// GraceSink delivers events even once the caller's context has ended, within a few seconds: the
// failures of work that a deadline cut short must still reach the audit trail. Build a sweep's
// Recorder on it. A started event recorded that way is harmless: the call it announces fails at once
// on the ended context.
func GraceSink(s audit.Sink) audit.Sink { return graceSink{s} }

type graceSink struct{ sink audit.Sink }

func (g graceSink) Publish(ctx context.Context, events ...audit.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditGrace)
	defer cancel()
	return g.sink.Publish(ctx, events...)
}
