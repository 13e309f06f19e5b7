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

// apply converges one side, starting from a plan made on the snapshot. It returns the result, the
// DB as last read (or the snapshot when nothing was read), and an error for any outcome but
// skipped, planned and succeeded.
func (r *Reconciler) apply(ctx context.Context, s side, p sidePlan, cur reapi.DB, pol Policy) (SideResult, reapi.DB, error) {
	start := r.cfg.Now()
	res := SideResult{Step: s.step, Cluster: s.cluster, Database: s.uid, Changes: p.changes, Warnings: p.warnings, Before: p.before, After: p.before}
	ev := func(o audit.Outcome, err error) error {
		e := r.event(s, o, pol, start)
		e.Before, e.After, e.Changes = &res.Before, &res.After, res.Changes
		if len(res.Warnings) > 0 {
			e.Details = map[string]any{"warnings": res.Warnings}
		}
		if err != nil {
			e.Error = errorInfo(err)
		}
		return r.record(ctx, e)
	}
	fail := func(err error) (SideResult, reapi.DB, error) {
		res.Outcome, res.Err = audit.Failed, err
		if aerr := ev(audit.Failed, err); aerr != nil {
			err = errors.Join(err, aerr)
		}
		r.log(ctx, res)
		return res, cur, err
	}
	done := func(o audit.Outcome) (SideResult, reapi.DB, error) {
		res.Outcome = o
		err := ev(o, nil)
		r.log(ctx, res)
		return res, cur, err
	}
	if p.update.Empty() {
		return done(audit.Skipped)
	}
	if pol.DryRun {
		res.After = p.after
		res.Calls++
		if _, err := s.api.UpdateDB(ctx, s.uid, p.update, true); err != nil {
			return fail(fmt.Errorf("validate update (dry run): %w", scrub(err)))
		}
		return done(audit.Planned)
	}

	// Invariant 6: no mutating call unless the started event was accepted.
	res.After = p.after
	if err := ev(audit.Started, nil); err != nil {
		res.After = p.before
		res.Outcome, res.Err = audit.Failed, fmt.Errorf("%w: %w", errAudit, err)
		r.log(ctx, res)
		return res, cur, res.Err
	}
	res.After = p.before
	for round := 1; ; round++ {
		res.Rounds = round
		res.Calls++
		if _, err := s.api.UpdateDB(ctx, s.uid, p.update, true); err != nil {
			return fail(fmt.Errorf("validate update (dry run): %w", scrub(err)))
		}
		res.Calls++
		res.Writes++
		updated, err := s.api.UpdateDB(ctx, s.uid, p.update, false)
		if err != nil {
			return fail(fmt.Errorf("update: %w", scrub(err)))
		}
		res.Calls++
		if _, err := s.api.WaitForDB(ctx, s.uid, updated.ActionUID, r.cfg.Poll); err != nil {
			return fail(fmt.Errorf("wait for the update to apply: %w", scrub(err)))
		}
		res.Calls++
		got, err := s.api.GetDB(ctx, s.uid, DBFields()...)
		if err != nil {
			return fail(fmt.Errorf("read back: %w", scrub(err)))
		}
		cur = got
		res.After = s.state(got)
		conflict, verr := p.verify(got)
		if verr == nil {
			return done(audit.Succeeded)
		}
		if !conflict || round == maxRounds {
			return fail(fmt.Errorf("verify (round %d): %w", round, verr))
		}
		// Someone wrote the DB between our PUT and the read-back (invariant 8): plan again from what
		// is there now, which keeps their certificates and restores ours.
		next, err := s.plan(got)
		if err != nil {
			return fail(fmt.Errorf("plan again after a concurrent change: %w", err))
		}
		if next.update.Empty() {
			return done(audit.Succeeded)
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
