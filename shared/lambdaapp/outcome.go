package lambdaapp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// IsRejection reports whether err is bad input (a malformed event or a refused link): the run changed
// nothing and retrying the same input cannot succeed.
func IsRejection(err error) bool {
	var inv *trigger.InvalidError
	var rej *reconcile.RejectError
	return errors.As(err, &inv) || errors.As(err, &rej) || errors.Is(err, reconcile.ErrUnknownCluster)
}

// RejectEvent audits a trigger event that could not be decoded, and returns the error to hand back to
// Lambda (so the event reaches the failure destination and is not lost).
func RejectEvent(ctx context.Context, rec *audit.Recorder, start time.Time, err error) error {
	code := "invalid_event"
	var rej *reconcile.RejectError
	switch {
	case errors.Is(err, reconcile.ErrUnknownCluster):
		code = reconcile.CodeUnknownCluster
	case errors.As(err, &rej):
		code = rej.Code
	}
	e := audit.Event{
		Step:       "decode-event",
		Outcome:    audit.Rejected,
		Error:      &audit.ErrorInfo{Code: code, Message: err.Error()},
		DurationMs: time.Since(start).Milliseconds(),
	}
	if aerr := rec.Record(ctx, e); aerr != nil {
		return fmt.Errorf("%w (and the rejection could not be audited: %v)", err, aerr)
	}
	return err
}

// LinkSummary is a compact, secret-free report of one link for a function's response.
type LinkSummary struct {
	Link        string   `json:"link"`
	Source      string   `json:"source_outcome,omitempty"`
	Destination string   `json:"destination_outcome,omitempty"`
	Changes     []string `json:"changes,omitempty"`
	Status      string   `json:"status,omitempty"`
	LastError   string   `json:"last_error,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Summaries turns reconciler reports into response rows.
func Summaries(reports []reconcile.LinkReport) []LinkSummary {
	out := make([]LinkSummary, 0, len(reports))
	for _, r := range reports {
		s := LinkSummary{
			Link: fmt.Sprintf("%s/%d -> %s/%d", r.Link.SourceCluster, r.Link.SourceDatabase,
				r.Link.DestinationCluster, r.Link.DestinationDB),
			Source:      string(r.Source.Outcome),
			Destination: string(r.Destination.Outcome),
			Status:      r.Status,
			LastError:   r.LastError,
		}
		if !r.SharedSource {
			s.Changes = append(s.Changes, r.Source.Changes...)
		}
		s.Changes = append(s.Changes, r.Destination.Changes...)
		if r.Err != nil {
			s.Error = audit.Redact(r.Err.Error())
		}
		out = append(out, s)
	}
	return out
}
