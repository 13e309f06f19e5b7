package eventbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/audit"
)

// fakeAPI records every PutEvents call and answers with respond (call counts from 1).
// Unit tests of the batching and retry logic only; the integration tests use moto_server.
type fakeAPI struct {
	mu      sync.Mutex
	calls   [][]types.PutEventsRequestEntry
	respond func(call int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error)
}

func (f *fakeAPI) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, in.Entries)
	call := len(f.calls)
	f.mu.Unlock()
	if f.respond == nil {
		return accept(in.Entries, nil), nil
	}
	return f.respond(call, in.Entries)
}

// accept answers a call, failing the entries at the indexes in fail with their code.
func accept(entries []types.PutEventsRequestEntry, fail map[int]string) *eventbridge.PutEventsOutput {
	out := &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, len(entries))}
	for i := range entries {
		if code, ok := fail[i]; ok {
			out.Entries[i] = types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("nope")}
			out.FailedEntryCount++
			continue
		}
		out.Entries[i] = types.PutEventsResultEntry{EventId: aws.String(fmt.Sprintf("ev-%d", i))}
	}
	return out
}

func (f *fakeAPI) callSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	sizes := make([]int, len(f.calls))
	for i, c := range f.calls {
		sizes[i] = len(c)
	}
	return sizes
}

// detailIDs returns the event ids carried by one call's entries.
func detailIDs(t *testing.T, entries []types.PutEventsRequestEntry) []string {
	t.Helper()
	ids := make([]string, len(entries))
	for i, e := range entries {
		var ev audit.Event
		if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &ev); err != nil {
			t.Fatalf("entry %d detail is not an event: %v", i, err)
		}
		ids[i] = ev.ID
	}
	return ids
}

// testEvents returns n distinct, schema-valid events.
func testEvents(n int) []audit.Event {
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = audit.Event{
			SchemaVersion: audit.SchemaVersion,
			ID:            fmt.Sprintf("%032x", i+1),
			Time:          time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
			Actor:         "eventbus-test",
			RunID:         "run-1",
			Trigger:       audit.Trigger{Kind: "schedule"},
			Step:          fmt.Sprintf("step-%d", i),
			Outcome:       audit.Succeeded,
			Cluster:       "east.example.com",
			Database:      i + 1,
			DurationMs:    int64(i),
		}
	}
	return evs
}

func TestEntryFields(t *testing.T) {
	evs := testEvents(2)
	evs[1].DetailType = audit.DetailDrift
	evs[1].Time = time.Time{}
	api := &fakeAPI{}
	if err := New(api, "audit-bus", Options{}).Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(api.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(api.calls))
	}
	detail := func(e audit.Event) *string {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return aws.String(string(b))
	}
	want := []types.PutEventsRequestEntry{
		{Source: aws.String("replica-tls"), DetailType: aws.String(audit.DetailStep), EventBusName: aws.String("audit-bus"), Time: aws.Time(evs[0].Time), Detail: detail(evs[0])},
		{Source: aws.String("replica-tls"), DetailType: aws.String(audit.DetailDrift), EventBusName: aws.String("audit-bus"), Detail: detail(evs[1])},
	}
	if diff := cmp.Diff(want, api.calls[0], cmp.AllowUnexported(types.PutEventsRequestEntry{})); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestBatching(t *testing.T) {
	big := func(n, size int) []audit.Event {
		evs := testEvents(n)
		for i := range evs {
			evs[i].Details = map[string]any{"pad": strings.Repeat("x", size)}
		}
		return evs
	}
	tests := []struct {
		name   string
		events []audit.Event
		want   []int // entries per call
	}{
		{"none", nil, []int{}},
		{"one", testEvents(1), []int{1}},
		{"ten fit one call", testEvents(10), []int{10}},
		{"twenty-five take three calls", testEvents(25), []int{10, 10, 5}},
		{"100 KB entries go two to a call", big(5, 100*1024), []int{2, 2, 1}},
		{"an entry just under the limit goes alone", big(3, 200*1024), []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{}
			if err := New(api, "b", Options{}).Publish(context.Background(), tt.events...); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if diff := cmp.Diff(tt.want, api.callSizes()); diff != "" {
				t.Errorf("entries per call (-want +got):\n%s", diff)
			}
			var sent []string
			for _, c := range api.calls {
				size := 0
				for _, e := range c {
					size += entrySize(e)
				}
				if size >= MaxRequestBytes {
					t.Errorf("a call carried %d bytes, want < %d", size, MaxRequestBytes)
				}
				sent = append(sent, detailIDs(t, c)...)
			}
			var want []string
			for _, e := range tt.events {
				want = append(want, e.ID)
			}
			if diff := cmp.Diff(want, sent); diff != "" {
				t.Errorf("events sent, in order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBadEventsAreRejectedBeforeSending(t *testing.T) {
	tooBig := testEvents(1)[0]
	tooBig.Details = map[string]any{"pad": strings.Repeat("x", MaxRequestBytes)}
	nan := testEvents(1)[0]
	nan.Details = map[string]any{"ratio": math.NaN()}
	longType := testEvents(1)[0]
	longType.DetailType = strings.Repeat("d", 129)
	tests := []struct {
		name string
		bad  audit.Event
		want string
	}{
		{"over the size limit", tooBig, "over the 262143-byte PutEvents limit"},
		{"not serializable", nan, "serialize event"},
		{"detail type too long", longType, "detail type is 129 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeAPI{}
			evs := append(testEvents(3), tt.bad)
			err := New(api, "b", Options{}).Publish(context.Background(), evs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "event 4 of 4") {
				t.Fatalf("Publish error = %v, want one naming event 4 of 4 and %q", err, tt.want)
			}
			if len(api.calls) != 0 {
				t.Errorf("%d PutEvents calls made, want none", len(api.calls))
			}
		})
	}
}

func TestRetryResendsOnlyFailedEntries(t *testing.T) {
	evs := testEvents(10)
	api := &fakeAPI{respond: func(call int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
		if call == 1 {
			return accept(entries, map[int]string{3: "ThrottlingException", 7: "ThrottlingException"}), nil
		}
		return accept(entries, nil), nil
	}}
	var logs bytes.Buffer
	p := New(api, "b", Options{MaxAttempts: 3, Backoff: time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := p.Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if !strings.Contains(logs.String(), `"codes":"ThrottlingException x2"`) || strings.Contains(logs.String(), evs[3].Step) {
		t.Errorf("retry log %q should name the codes and no event content", logs.String())
	}
	if len(api.calls) != 2 {
		t.Fatalf("%d calls, want 2", len(api.calls))
	}
	if diff := cmp.Diff([]string{evs[3].ID, evs[7].ID}, detailIDs(t, api.calls[1])); diff != "" {
		t.Errorf("second call resent (-want +got):\n%s", diff)
	}
}

func TestFailures(t *testing.T) {
	always := func(code string) func(int, []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
		return func(_ int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
			return accept(entries, map[int]string{0: code, 1: code}), nil
		}
	}
	apiErr := errors.New("connection reset")
	tests := []struct {
		name      string
		events    int
		respond   func(int, []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error)
		wantCalls int
		want      []string
		wantIs    error
	}{
		{
			name: "throttled until the attempts run out", events: 10, respond: always("ThrottlingException"),
			wantCalls: 3, want: []string{"bus b", "2 of 10 entries failed after 3 attempts", "ThrottlingException x2"},
		},
		{
			name: "a final code is not retried", events: 10, respond: always("MalformedDetail"),
			wantCalls: 1, want: []string{"2 of 10 entries failed after 1 attempts", "MalformedDetail x2"},
		},
		{
			name: "mixed final and retryable codes stop at once", events: 10,
			respond: func(_ int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				return accept(entries, map[int]string{0: "InternalFailure", 5: "AccessDeniedException"}), nil
			},
			wantCalls: 1, want: []string{"2 of 10 entries failed", "AccessDeniedException x1, InternalFailure x1"},
		},
		{
			name: "a missing result is a failure", events: 3,
			respond: func(_ int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				return accept(entries[:len(entries)-1], nil), nil // the last entry gets no result
			},
			wantCalls: 3, want: []string{"1 of 3 entries failed after 3 attempts", "MissingResult x1"},
		},
		{
			name: "a failed call reports how many were accepted before it", events: 25,
			respond: func(call int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
				if call == 2 {
					return nil, apiErr
				}
				return accept(entries, nil), nil
			},
			wantCalls: 2, want: []string{"10 of 25 accepted", "put 10 events", "connection reset"}, wantIs: apiErr,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := testEvents(tt.events)
			for i := range evs {
				evs[i].Step = "secret-step-content"
			}
			api := &fakeAPI{respond: tt.respond}
			err := New(api, "b", Options{MaxAttempts: 3, Backoff: time.Millisecond}).Publish(context.Background(), evs...)
			if err == nil {
				t.Fatal("Publish succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret-step-content") || strings.Contains(err.Error(), "nope") {
				t.Errorf("error %q carries entry content or messages", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if len(api.calls) != tt.wantCalls {
				t.Errorf("%d calls, want %d", len(api.calls), tt.wantCalls)
			}
		})
	}
}

func TestContextEndsRetries(t *testing.T) {
	api := &fakeAPI{respond: func(_ int, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
		return accept(entries, map[int]string{0: "ThrottlingException"}), nil
	}}
	// The backoff is far longer than the deadline: Publish must give up when the context ends.
	p := New(api, "b", Options{MaxAttempts: 5, Backoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := p.Publish(ctx, testEvents(2)...)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish error = %v, want context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "1 of 2 entries not accepted (ThrottlingException x1)") {
		t.Errorf("error %q does not say what was left", err)
	}
	if len(api.calls) != 1 {
		t.Errorf("%d calls, want 1", len(api.calls))
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	api = &fakeAPI{}
	if err := New(api, "b", Options{}).Publish(cancelled, testEvents(1)...); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
	if len(api.calls) != 0 {
		t.Errorf("%d calls with a cancelled context, want 0", len(api.calls))
	}
}

type noopAPI struct{ out *eventbridge.PutEventsOutput }

func (n noopAPI) PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	return n.out, nil
}

func BenchmarkPublish100(b *testing.B) {
	evs := testEvents(100)
	out := &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, 10)}
	p := New(noopAPI{out: out}, "b", Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Publish(ctx, evs...); err != nil {
			b.Fatal(err)
		}
	}
}
