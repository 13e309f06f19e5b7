package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// Audit steps.
const (
	StepSource      = "reconcile-source"
	StepDestination = "reconcile-destination"
	StepResolve     = "resolve-link"
)

// maxRounds bounds how often one side is re-planned after a concurrent writer changed it under us.
const maxRounds = 3

// SideResult is what happened to one side (source or destination DB) of a link.
type SideResult struct {
	Step     string
	Cluster  string
	Database int
	Outcome  audit.Outcome // "" when the side was not attempted
	Changes  []string      // every change made (or, in a dry run, that would be made)
	Warnings []string
	Before   audit.State
	After    audit.State
	Calls    int // cluster API calls made by this side
	Writes   int // mutating calls among them (PUT without dry_run)
	Rounds   int // plan-apply-verify rounds; more than 1 after a concurrent writer
	Err      error
}

// sidePlan is a source or destination plan as the applier sees it.
type sidePlan struct {
	update   reapi.DBUpdate
	changes  []string
	warnings []string
	before   audit.State
	after    audit.State
	verify   func(reapi.DB) (conflict bool, err error)
}

func (p SourcePlan) side() sidePlan {
	return sidePlan{p.Update, p.Changes, p.Warnings, p.Before, p.After, p.want.verify}
}

func (p DestPlan) side() sidePlan {
	return sidePlan{p.Update, p.Changes, p.Warnings, p.Before, p.After, p.want.verify}
}

// side is one DB to converge: where it is, how to plan it again, how to show it in audit events.
type side struct {
	step    string
	cluster string
	uid     int
	link    *audit.Link
	api     ClusterAPI
	plan    func(cur reapi.DB) (sidePlan, error) // pure: plans again from a fresh read
	state   func(reapi.DB) audit.State
}

// apply converges one side. p was planned on the run's snapshot: it only says whether there may be
// anything to do. When there is, the side is leased, read fresh, and planned again from that read
// (docs/architecture.md, "Applying a change"): a plan never rests on a read another writer may have
// overtaken. It returns the result, the DB as last read (or cur when nothing was read), and an error
// for any outcome but skipped, planned and succeeded.
func (r *Reconciler) apply(ctx context.Context, s side, p sidePlan, cur reapi.DB, pol Policy) (SideResult, reapi.DB, error) {
	a := &applying{r: r, s: s, pol: pol, start: r.cfg.Now(), cur: cur}
	a.res = SideResult{Step: s.step, Cluster: s.cluster, Database: s.uid, Changes: p.changes, Warnings: p.warnings, Before: p.before, After: p.before}
	if p.update.Empty() {
		return a.done(ctx, audit.Skipped)
	}
	if pol.DryRun {
		a.res.After = p.after
		a.res.Calls++
		if _, err := s.api.UpdateDB(ctx, s.uid, p.update, true); err != nil {
			return a.fail(ctx, fmt.Errorf("validate update (dry run): %w", scrub(err)))
		}
		return a.done(ctx, audit.Planned)
	}
	ran := false
	var out SideResult
	var got reapi.DB
	var err error
	resource := DBLease(LinkEnd{s.cluster, s.uid})
	herr := r.cfg.Leases.Hold(ctx, resource, func(ctx context.Context) error {
		ran = true
		out, got, err = a.leased(ctx)
		return err
	})
	if !ran {
		return a.fail(ctx, leaseErr(resource, herr))
	}
	if herr != nil && err == nil {
		// The work finished; only the release failed. The lease expires on its own.
		r.cfg.Logger.WarnContext(ctx, "lease release failed", "resource", resource, "error", redact(herr.Error()))
	}
	return out, got, err
}

// applying is one side being applied.
type applying struct {
	r     *Reconciler
	s     side
	pol   Policy
	start time.Time
	cur   reapi.DB
	res   SideResult
}

func (a *applying) event(ctx context.Context, o audit.Outcome, err error) error {
	e := a.r.event(a.s, o, a.pol, a.start)
	e.Before, e.After, e.Changes = &a.res.Before, &a.res.After, a.res.Changes
	if len(a.res.Warnings) > 0 {
		e.Details = map[string]any{"warnings": a.res.Warnings}
	}
	if err != nil {
		e.Error = errorInfo(err)
	}
	return a.r.record(ctx, e)
}

func (a *applying) fail(ctx context.Context, err error) (SideResult, reapi.DB, error) {
	a.res.Outcome, a.res.Err = audit.Failed, err
	if aerr := a.event(ctx, audit.Failed, err); aerr != nil {
		err = errors.Join(err, aerr)
		a.res.Err = err
	}
	a.r.log(ctx, a.res)
	return a.res, a.cur, err
}

func (a *applying) done(ctx context.Context, o audit.Outcome) (SideResult, reapi.DB, error) {
	a.res.Outcome = o
	err := a.event(ctx, o, nil)
	a.r.log(ctx, a.res)
	return a.res, a.cur, err
}

// leased runs under the side's lease: read fresh, plan, audit started, validate, write, wait, read
// back and verify that nothing the fresh read held was lost.
func (a *applying) leased(ctx context.Context) (SideResult, reapi.DB, error) {
	s, res := a.s, &a.res
	res.Calls++
	fresh, err := s.api.GetDB(ctx, s.uid, DBFields()...)
	if err != nil {
		return a.fail(ctx, fmt.Errorf("read under the lease: %w", scrub(err)))
	}
	a.cur = fresh
	p, err := s.plan(fresh)
	if err != nil {
		return a.fail(ctx, fmt.Errorf("plan from the read under the lease: %w", err))
	}
	res.Changes, res.Warnings, res.Before, res.After = p.changes, p.warnings, p.before, p.before
	if p.update.Empty() {
		// Another run converged it since the snapshot.
		return a.done(ctx, audit.Skipped)
	}
	// Invariant 6: no mutating call unless the started event was accepted.
	res.After = p.after
	if err := a.event(ctx, audit.Started, nil); err != nil {
		res.After = p.before
		res.Outcome, res.Err = audit.Failed, fmt.Errorf("%w: %w", errAudit, err)
		a.r.log(ctx, *res)
		return *res, a.cur, res.Err
	}
	res.After = p.before
	for round := 1; ; round++ {
		res.Rounds = round
		res.Calls++
		if _, err := s.api.UpdateDB(ctx, s.uid, p.update, true); err != nil {
			return a.fail(ctx, fmt.Errorf("validate update (dry run): %w", scrub(err)))
		}
		res.Calls++
		res.Writes++
		updated, err := s.api.UpdateDB(ctx, s.uid, p.update, false)
		if err != nil {
			return a.fail(ctx, fmt.Errorf("update: %w", scrub(err)))
		}
		res.Calls++
		if _, err := s.api.WaitForDB(ctx, s.uid, updated.ActionUID, a.r.cfg.Poll); err != nil {
			return a.fail(ctx, fmt.Errorf("wait for the update to apply: %w", scrub(err)))
		}
		res.Calls++
		got, err := s.api.GetDB(ctx, s.uid, DBFields()...)
		if err != nil {
			return a.fail(ctx, fmt.Errorf("read back: %w", scrub(err)))
		}
		a.cur = got
		res.After = s.state(got)
		conflict, verr := p.verify(got)
		if verr == nil {
			return a.done(ctx, audit.Succeeded)
		}
		if !conflict || round == maxRounds {
			return a.fail(ctx, fmt.Errorf("verify (round %d): %w", round, verr))
		}
		// A writer outside replica-tls (the UI, rladmin) changed the DB between our PUT and the
		// read-back: plan again from what is there now, which keeps their change and restores ours.
		next, err := s.plan(got)
		if err != nil {
			return a.fail(ctx, fmt.Errorf("plan again after a concurrent change: %w", err))
		}
		if next.update.Empty() {
			return a.done(ctx, audit.Succeeded)
		}
		p = next
		res.Changes = append(res.Changes, next.changes...)
	}
}

// event fills what every event of a side carries; the Auditor fills run, trigger and time.
func (r *Reconciler) event(s side, o audit.Outcome, pol Policy, start time.Time) audit.Event {
	return audit.Event{
		SchemaVersion: audit.SchemaVersion,
		DetailType:    audit.DetailStep,
		Step:          s.step,
		Outcome:       o,
		Cluster:       s.cluster,
		Database:      s.uid,
		Link:          s.link,
		DryRun:        pol.DryRun,
		DurationMs:    r.cfg.Now().Sub(start).Milliseconds(),
	}
}

// errorInfo is a failure as audit events carry it: code, and a redacted message within the
// schema's length limit.
func errorInfo(err error) *audit.ErrorInfo {
	msg := redact(err.Error())
	if len(msg) > audit.MaxMessageLen {
		cut := audit.MaxMessageLen - len("...")
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return &audit.ErrorInfo{Code: errorCode(err), Message: msg}
}

// record hands an event to the Auditor; nil means accepted.
func (r *Reconciler) record(ctx context.Context, e audit.Event) error {
	if r.cfg.Auditor == nil {
		return fmt.Errorf("record %s %s event: no auditor configured", e.Step, e.Outcome)
	}
	if err := r.cfg.Auditor.Record(ctx, e); err != nil {
		return fmt.Errorf("record %s %s event for %s/%d: %w", e.Step, e.Outcome, e.Cluster, e.Database, scrub(err))
	}
	return nil
}

func (r *Reconciler) log(ctx context.Context, res SideResult) {
	attrs := []any{"step", res.Step, "cluster", res.Cluster, "db", res.Database, "outcome", string(res.Outcome),
		"changes", len(res.Changes), "writes", res.Writes, "rounds", res.Rounds}
	if res.Err != nil {
		r.cfg.Logger.WarnContext(ctx, "reconcile side", append(attrs, "error", redact(res.Err.Error()))...)
		return
	}
	r.cfg.Logger.InfoContext(ctx, "reconcile side", attrs...)
}
