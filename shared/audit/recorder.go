package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	sink Sink
	run  Run
	now  func() time.Time
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
	return &Recorder{sink: sink, run: run, now: now}
}

// Run returns the run this Recorder stamps on its events.
func (r *Recorder) Run() Run { return r.run }

// Record fills the event's schema version, id, time (UTC), run id, actor, trigger and dry-run flag
// (the run's values win where set: an event recorded through a run belongs to it; a step already
// marked dry-run stays so), defaults its detail type to DetailStep, redacts every string and detail
// value in it (see redactEvent), and publishes it.
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
	redactEvent(&e)
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
