// Package eventbus publishes audit events to an Amazon EventBridge bus: it is the production
// audit.Sink. It batches entries within the PutEvents limits and retries only the entries EventBridge
// reports as failed.
package eventbus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/replica-tls/replica-tls/shared/audit"
)

// PutEvents limits (EventBridge quotas): entries per call, and the summed entry size of one call,
// counted the way EventBridge counts it (see entrySize).
const (
	MaxBatchEntries = 10
	MaxRequestBytes = 256 * 1024
	maxDetailType   = 128
)

// PutEventsAPI is the one EventBridge call the Publisher makes; *eventbridge.Client implements it.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Options tune the Publisher. Zero values get defaults.
type Options struct {
	MaxAttempts int           // PutEvents attempts per entry, the first included; default 4
	Backoff     time.Duration // wait before the first retry, doubled for each next one (with jitter); default 100ms
	Logger      *slog.Logger  // retries are logged at Warn; default: discard
}

// Publisher publishes audit events to one bus. It is safe for concurrent use.
type Publisher struct {
	api  PutEventsAPI
	bus  string
	opts Options
}

var _ audit.Sink = (*Publisher)(nil)

// New returns a Publisher putting events on busName (a name or ARN) through api.
func New(api PutEventsAPI, busName string, opts Options) *Publisher {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{api: api, bus: busName, opts: opts}
}

// Publish puts every event on the bus, in order, as entries with source audit.Source, the event's
// detail type (default audit.DetailStep), its time, and its JSON as detail. Entries EventBridge
// reports as failed with a retryable code are sent again, alone, after a backoff, up to MaxAttempts
// and within ctx. It returns nil only when every event was accepted. An event that cannot be
// serialized or is over the size limit is an error before anything is sent.
//
// Events accepted before a failure stay on the bus: a caller that publishes again may duplicate them;
// consumers de-duplicate on the detail's id.
func (p *Publisher) Publish(ctx context.Context, events ...audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	entries := make([]pending, len(events))
	for i, e := range events {
		en, err := p.entry(e)
		if err != nil {
			return fmt.Errorf("publish audit events to bus %s: event %d of %d (step %s, id %s): %w", p.bus, i+1, len(events), e.Step, e.ID, err)
		}
		entries[i] = en
	}
	accepted := 0
	for attempt := 1; ; attempt++ {
		var failed []pending
		for _, batch := range batches(entries) {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("publish audit events to bus %s: %d of %d accepted before the context ended: %w", p.bus, accepted, len(events), err)
			}
			f, err := p.put(ctx, batch)
			if err != nil {
				return fmt.Errorf("publish audit events to bus %s (%d of %d accepted): %w", p.bus, accepted, len(events), err)
			}
			accepted += len(batch) - len(f)
			failed = append(failed, f...)
		}
		if len(failed) == 0 {
			return nil
		}
		retry := retryable(failed)
		if len(retry) == 0 || attempt >= p.opts.MaxAttempts {
			return fmt.Errorf("publish audit events to bus %s: %d of %d entries failed after %d attempts: %s",
				p.bus, len(failed), len(events), attempt, codeSummary(failed))
		}
		if len(retry) < len(failed) {
			// Some failures are final: the publish fails anyway, so do not wait to resend the rest.
			return fmt.Errorf("publish audit events to bus %s: %d of %d entries failed: %s",
				p.bus, len(failed), len(events), codeSummary(failed))
		}
		delay := p.backoff(attempt)
		p.opts.Logger.WarnContext(ctx, "retrying audit events EventBridge did not accept",
			"bus", p.bus, "failed", len(failed), "total", len(events), "codes", codeSummary(failed),
			"attempt", attempt, "delay", delay)
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("publish audit events to bus %s: %d of %d entries not accepted (%s) before the context ended: %w",
				p.bus, len(failed), len(events), codeSummary(failed), err)
		}
		entries = failed
	}
}

// pending is one entry on its way, with its computed size and the last error code it got.
type pending struct {
	entry types.PutEventsRequestEntry
	size  int
	code  string
}

func (p *Publisher) entry(e audit.Event) (pending, error) {
	detailType := e.DetailType
	if detailType == "" {
		detailType = audit.DetailStep
	}
	if len(detailType) > maxDetailType {
		return pending{}, fmt.Errorf("detail type is %d bytes, over the %d allowed", len(detailType), maxDetailType)
	}
	detail, err := json.Marshal(e)
	if err != nil {
		// The json error names the offending type, never the value.
		return pending{}, fmt.Errorf("serialize event: %w", err)
	}
	en := types.PutEventsRequestEntry{
		Source:       aws.String(audit.Source),
		DetailType:   aws.String(detailType),
		Detail:       aws.String(string(detail)),
		EventBusName: aws.String(p.bus),
	}
	if !e.Time.IsZero() {
		en.Time = aws.Time(e.Time)
	}
	size := entrySize(en)
	if size >= MaxRequestBytes {
		return pending{}, fmt.Errorf("entry is %d bytes, over the %d-byte PutEvents limit", size, MaxRequestBytes-1)
	}
	return pending{entry: en, size: size}, nil
}

// entrySize follows EventBridge's documented rule: Time counts 14 bytes, Source, DetailType, Detail
// and each Resources ARN their UTF-8 length.
func entrySize(en types.PutEventsRequestEntry) int {
	n := len(aws.ToString(en.Source)) + len(aws.ToString(en.DetailType)) + len(aws.ToString(en.Detail))
	if en.Time != nil {
		n += 14
	}
	for _, r := range en.Resources {
		n += len(r)
	}
	return n
}

// batches splits entries, in order, into calls of at most MaxBatchEntries entries whose sizes sum to
// less than MaxRequestBytes.
func batches(entries []pending) [][]pending {
	var out [][]pending
	start, size := 0, 0
	for i, e := range entries {
		if i > start && (i-start == MaxBatchEntries || size+e.size >= MaxRequestBytes) {
			out = append(out, entries[start:i])
			start, size = i, 0
		}
		size += e.size
	}
	return append(out, entries[start:])
}

// put sends one batch and returns the entries EventBridge did not accept, each with its error code.
func (p *Publisher) put(ctx context.Context, batch []pending) ([]pending, error) {
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(batch))}
	for i, b := range batch {
		in.Entries[i] = b.entry
	}
	out, err := p.api.PutEvents(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("put %d events: %w", len(batch), err)
	}
	var failed []pending
	for i, b := range batch {
		// Result i belongs to entry i. A missing result is not an acceptance.
		switch {
		case i >= len(out.Entries):
			b.code = "MissingResult"
		case aws.ToString(out.Entries[i].ErrorCode) != "":
			b.code = aws.ToString(out.Entries[i].ErrorCode)
		default:
			continue
		}
		failed = append(failed, b)
	}
	if len(failed) == 0 && out.FailedEntryCount > 0 {
		return nil, fmt.Errorf("put %d events: EventBridge reported %d failed entries without naming them", len(batch), out.FailedEntryCount)
	}
	return failed, nil
}

// finalCode reports whether another attempt cannot fix an entry that got this error code (the SDK
// documentation lists InternalFailure and ThrottlingException as the retryable ones). Unknown codes
// are retried: the attempts are bounded anyway.
func finalCode(code string) bool {
	switch code {
	case "AccessDeniedException", "InvalidAccountIdException", "InvalidArgument", "MalformedDetail",
		"RedactionFailure", "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException",
		"ResourceNotFoundException":
		return true
	}
	return false
}

func retryable(failed []pending) []pending {
	var out []pending
	for _, f := range failed {
		if !finalCode(f.code) {
			out = append(out, f)
		}
	}
	return out
}

// codeSummary names the error codes and how many entries got each, never the entries' content.
func codeSummary(failed []pending) string {
	counts := map[string]int{}
	for _, f := range failed {
		counts[f.code]++
	}
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s x%d", c, counts[c])
	}
	return strings.Join(parts, ", ")
}

// backoff is Backoff doubled per attempt, capped at 64x, with up to 50% jitter so that concurrent
// publishers do not retry in step.
func (p *Publisher) backoff(attempt int) time.Duration {
	d := p.opts.Backoff << min(attempt-1, 6)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
