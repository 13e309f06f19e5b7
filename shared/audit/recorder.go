package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"
)

// Run identifies one invocation: every event it records carries the same run id, actor and trigger.
type Run struct {
	ID      string
	Actor   string
	Trigger Trigger
	DryRun  bool
}

// Recorder stamps events with their run's identity, a fresh id and the time, and publishes them.
type Recorder struct {
	sink   Sink
	run    Run
	now    func() time.Time
	redact redactor
}

// NewRecorder returns a Recorder publishing to sink. now is the clock (time.Now in production);
// nil means time.Now. An empty run.ID gets a fresh NewRunID.
func NewRecorder(sink Sink, run Run, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	if run.ID == "" {
		run.ID = NewRunID()
	}
	return &Recorder{sink: sink, run: run, now: now, redact: newRedactor()}
}

// Run returns the run this Recorder stamps on its events.
func (r *Recorder) Run() Run { return r.run }

// Record fills the event's schema version, id, time (UTC), run id, actor, trigger and dry-run flag
// (the run's values win where set: an event recorded through a run belongs to it; a step already
// marked dry-run stays so), defaults its detail type to DetailStep, redacts its free text, and publishes it.
// It returns nil only when the sink accepted the event.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.Step == "" {
		return errors.New("record audit event: step is empty")
	}
	if !e.Outcome.valid() {
		return fmt.Errorf("record audit event for step %s: unknown outcome %q", e.Step, e.Outcome)
	}
	e.SchemaVersion = SchemaVersion
	e.ID = newID()
	e.Time = r.now().UTC()
	e.RunID = r.run.ID
	if r.run.Actor != "" {
		e.Actor = r.run.Actor
	}
	if r.run.Trigger != (Trigger{}) {
		e.Trigger = r.run.Trigger
	}
	e.DryRun = e.DryRun || r.run.DryRun
	if e.DetailType == "" {
		e.DetailType = DetailStep
	}
	r.redact.event(&e)
	if err := r.sink.Publish(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s (step %s, %s): %w", e.ID, e.Step, e.Outcome, err)
	}
	return nil
}

// NewRunID returns a fresh random run id (128 bits, lowercase hex).
func NewRunID() string { return newID() }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return hex.EncodeToString(b[:])
}

func (o Outcome) valid() bool {
	switch o {
	case Started, Succeeded, Skipped, Failed, Rejected, Planned:
		return true
	}
	return false
}

// event runs Redact over the free-text parts of an event, as a last line of defence: callers
// should already have redacted what they put there. The caller's Details map is not modified.
func (rd redactor) event(e *Event) {
	if e.Error != nil {
		ei := *e.Error
		ei.Message = rd.redact(ei.Message)
		e.Error = &ei
	}
	if len(e.Changes) > 0 {
		changes := make([]string, len(e.Changes))
		for i, c := range e.Changes {
			changes[i] = rd.redact(c)
		}
		e.Changes = changes
	}
	if len(e.Details) > 0 {
		details := maps.Clone(e.Details)
		for k, v := range details {
			if s, ok := v.(string); ok {
				details[k] = rd.redact(s)
			}
		}
		e.Details = details
	}
}
