package audit

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/replica-tls/replica-tls/shared/audit/schema"
	"github.com/replica-tls/replica-tls/shared/certs"
)

func TestRecorderFillsFields(t *testing.T) {
	clock := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	now := func() time.Time { return clock }
	run := Run{ID: "run-42", Actor: "replica-tls-reconcile", Trigger: Trigger{Kind: "replica-database-created", EventID: "ev-1"}}
	tests := []struct {
		name string
		run  Run
		in   Event
		want Event
	}{
		{
			name: "a bare step gets the run's identity, the clock's time in UTC and the default detail type",
			run:  run,
			in:   Event{Step: "plan", Outcome: Planned, Cluster: "east", Database: 1},
			want: Event{SchemaVersion: "1.0", DetailType: DetailStep, Time: clock.UTC(), Actor: run.Actor, RunID: "run-42",
				Trigger: run.Trigger, Step: "plan", Outcome: Planned, Cluster: "east", Database: 1},
		},
		{
			name: "the run's values replace the caller's; the detail type is kept",
			run:  run,
			in: Event{SchemaVersion: "0.1", ID: "caller", RunID: "other", Actor: "me", Trigger: Trigger{Kind: "x"},
				DetailType: DetailDrift, Step: "detect", Outcome: Failed, Time: clock.Add(-time.Hour)},
			want: Event{SchemaVersion: "1.0", DetailType: DetailDrift, Time: clock.UTC(), Actor: run.Actor, RunID: "run-42",
				Trigger: run.Trigger, Step: "detect", Outcome: Failed},
		},
		{
			name: "a dry run marks every event",
			run:  Run{ID: "r", Actor: "a", Trigger: Trigger{Kind: "schedule"}, DryRun: true},
			in:   Event{Step: "plan", Outcome: Planned},
			want: Event{SchemaVersion: "1.0", DetailType: DetailStep, Time: clock.UTC(), Actor: "a", RunID: "r",
				Trigger: Trigger{Kind: "schedule"}, Step: "plan", Outcome: Planned, DryRun: true},
		},
		{
			name: "a step marked dry-run stays so in a real run; an unset actor and trigger keep the caller's",
			run:  Run{ID: "r"},
			in:   Event{Step: "plan", Outcome: Planned, DryRun: true, Actor: "cli", Trigger: Trigger{Kind: "manual"}},
			want: Event{SchemaVersion: "1.0", DetailType: DetailStep, Time: clock.UTC(), Actor: "cli", RunID: "r",
				Trigger: Trigger{Kind: "manual"}, Step: "plan", Outcome: Planned, DryRun: true},
		},
		{
			name: "free text is redacted",
			run:  run,
			in: Event{Step: "apply", Outcome: Failed, Error: &ErrorInfo{Code: "dial", Message: "dial redis://admin:s3cret@east:12000: refused"},
				Changes: []string{"password=s3cret"}, Details: map[string]any{"uri": "rediss://u:p@h", "count": 2}},
			want: Event{SchemaVersion: "1.0", DetailType: DetailStep, Time: clock.UTC(), Actor: run.Actor, RunID: "run-42",
				Trigger: run.Trigger, Step: "apply", Outcome: Failed, Error: &ErrorInfo{Code: "dial", Message: "dial redis://admin:[redacted]@east:12000: refused"},
				Changes: []string{"password=[redacted]"}, Details: map[string]any{"uri": "rediss://u:[redacted]@h", "count": 2}},
		},
	}
	idPattern := regexp.MustCompile(`^[0-9a-f]{32}$`)
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatalf("schema.NewValidator: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink Memory
			r := NewRecorder(&sink, tt.run, now)
			if err := r.Record(context.Background(), tt.in); err != nil {
				t.Fatalf("Record: %v", err)
			}
			got := sink.Events()
			if len(got) != 1 {
				t.Fatalf("sink got %d events, want 1", len(got))
			}
			if !idPattern.MatchString(got[0].ID) {
				t.Errorf("ID = %q, want 32 lowercase hex digits", got[0].ID)
			}
			if diff := cmp.Diff(tt.want, got[0], cmpopts.IgnoreFields(Event{}, "ID")); diff != "" {
				t.Errorf("recorded event (-want +got):\n%s", diff)
			}
			if err := v.Validate(marshal(t, got[0])); err != nil {
				t.Errorf("recorded event does not match the schema: %v", err)
			}
		})
	}
}

func TestRecorderDoesNotModifyCallersDetails(t *testing.T) {
	var sink Memory
	details := map[string]any{"uri": "redis://a:b@h"}
	r := NewRecorder(&sink, Run{ID: "r"}, nil)
	if err := r.Record(context.Background(), Event{Step: "s", Outcome: Started, Details: details}); err != nil {
		t.Fatalf("Record: %v", err)
	}
	if details["uri"] != "redis://a:b@h" {
		t.Errorf("caller's map changed to %v", details)
	}
}

// TestRecorderRedactsEveryField puts secret material in every string field and in nested detail
// values, and checks the published event holds none of it while the caller's event is untouched.
func TestRecorderRedactsEveryField(t *testing.T) {
	const uri = "redis://admin:p/a#s w@east:12000"
	const clean = "redis://admin:[redacted]@east:12000"
	sum := func() *certs.Summary { return &certs.Summary{Fingerprint: "sha256:ab", Subject: "CN=" + uri} }
	state := func() *State {
		return &State{TLSMode: uri, ClientAuthentication: "password=x", LinkStatus: uri,
			TrustedCerts: []certs.Summary{*sum()}, ServerCert: sum()}
	}
	type finding struct {
		URI   string `json:"uri"`
		Count int    `json:"count"`
	}
	in := Event{
		Step: "apply " + uri, Outcome: Failed, Cluster: uri, Actor: uri,
		Link:        &Link{SourceCluster: uri, SourceDatabase: 1, DestinationCluster: "west", DestinationDB: 2},
		Before:      state(),
		After:       state(),
		Certificate: sum(),
		Changes:     []string{"set uri to " + uri},
		Error:       &ErrorInfo{Code: "token=abc", Message: uri},
		Details: map[string]any{
			"password": "hunter2", "count": 3, "ratio": 0.5, "ok": true,
			"nested":   map[string]any{"uris": []any{uri, 7}, "deeper": map[string]any{"api_key": "k", "n": 1}},
			"warnings": []string{"w " + uri},
			"findings": []finding{{URI: uri, Count: 2}},
		},
	}
	before := deepCopy(t, in)
	var sink Memory
	r := NewRecorder(&sink, Run{ID: "r", Trigger: Trigger{Kind: "k " + uri, EventID: uri}}, nil)
	if err := r.Record(context.Background(), in); err != nil {
		t.Fatalf("Record: %v", err)
	}
	got := sink.Events()[0]
	cleanSum := &certs.Summary{Fingerprint: "sha256:ab", Subject: "CN=" + clean}
	cleanState := &State{TLSMode: clean, ClientAuthentication: "password=[redacted]", LinkStatus: clean,
		TrustedCerts: []certs.Summary{*cleanSum}, ServerCert: cleanSum}
	want := Event{
		SchemaVersion: SchemaVersion, DetailType: DetailStep, RunID: "r", Trigger: Trigger{Kind: "k " + clean, EventID: clean},
		Step: "apply " + clean, Outcome: Failed, Cluster: clean, Actor: clean,
		Link:        &Link{SourceCluster: clean, SourceDatabase: 1, DestinationCluster: "west", DestinationDB: 2},
		Before:      cleanState,
		After:       cleanState,
		Certificate: cleanSum,
		Changes:     []string{"set uri to " + clean},
		Error:       &ErrorInfo{Code: "token=[redacted]", Message: clean},
		Details: map[string]any{
			"password": "[redacted]", "count": 3, "ratio": 0.5, "ok": true,
			"nested":   map[string]any{"uris": []any{clean, 7}, "deeper": map[string]any{"api_key": "[redacted]", "n": 1}},
			"warnings": []string{"w " + clean},
			"findings": []any{map[string]any{"uri": clean, "count": json.Number("2")}},
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Event{}, "ID", "Time")); diff != "" {
		t.Errorf("published event (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("the caller's event changed (-before +after):\n%s", diff)
	}
	if f := in.Details["findings"].([]finding); f[0].URI != uri {
		t.Errorf("the caller's findings changed: %+v", f)
	}
}

// deepCopy copies the event's pointers, slices and maps (those TestRecorderRedactsEveryField sets), so
// that a comparison afterwards sees any change Record made to them.
func deepCopy(t *testing.T, e Event) Event {
	t.Helper()
	c := e
	cpState := func(s *State) *State {
		n := *s
		n.TrustedCerts = append([]certs.Summary(nil), s.TrustedCerts...)
		sc := *s.ServerCert
		n.ServerCert = &sc
		return &n
	}
	l, cert, ei := *e.Link, *e.Certificate, *e.Error
	c.Link, c.Certificate, c.Error = &l, &cert, &ei
	c.Before, c.After = cpState(e.Before), cpState(e.After)
	c.Changes = append([]string(nil), e.Changes...)
	c.Details = map[string]any{}
	for k, v := range e.Details {
		switch x := v.(type) {
		case map[string]any:
			inner := map[string]any{"uris": append([]any(nil), x["uris"].([]any)...), "deeper": map[string]any{}}
			for k2, v2 := range x["deeper"].(map[string]any) {
				inner["deeper"].(map[string]any)[k2] = v2
			}
			c.Details[k] = inner
		case []string:
			c.Details[k] = append([]string(nil), x...)
		default:
			c.Details[k] = v
		}
	}
	return c
}

func TestRecorderIDsAreUnique(t *testing.T) {
	var sink Memory
	r := NewRecorder(&sink, Run{}, nil)
	if r.Run().ID == "" {
		t.Fatal("an empty run id was not filled")
	}
	seen := map[string]bool{r.Run().ID: true}
	for range 100 {
		if err := r.Record(context.Background(), Event{Step: "s", Outcome: Started}); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	for _, e := range sink.Events() {
		if seen[e.ID] {
			t.Fatalf("id %s repeated", e.ID)
		}
		seen[e.ID] = true
	}
	if a, b := NewRunID(), NewRunID(); a == b || len(a) != 32 {
		t.Errorf("NewRunID gave %q and %q, want two different 32-digit ids", a, b)
	}
}

func TestRecorderRejectsBadEventsAndReportsSinkFailure(t *testing.T) {
	sinkErr := errors.New("bus unavailable")
	tests := []struct {
		name    string
		in      Event
		sinkErr error
		want    string
		wantIs  error
	}{
		{name: "no step", in: Event{Outcome: Started}, want: "step is empty"},
		{name: "unknown outcome", in: Event{Step: "s", Outcome: "done"}, want: `unknown outcome "done"`},
		{name: "sink fails", in: Event{Step: "apply", Outcome: Started}, sinkErr: sinkErr, want: "step apply, started", wantIs: sinkErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sink Memory
			sink.FailWith(tt.sinkErr)
			err := NewRecorder(&sink, Run{ID: "r"}, nil).Record(context.Background(), tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Record error = %v, want one mentioning %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Record error %v does not wrap %v", err, tt.wantIs)
			}
			if n := len(sink.Events()); n != 0 {
				t.Errorf("sink kept %d events, want 0", n)
			}
		})
	}
}

func TestMemory(t *testing.T) {
	var m Memory
	ctx := context.Background()
	if err := m.Publish(ctx, Event{Step: "a"}, Event{Step: "b"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := m.Events()
	got[0].Step = "changed"
	if diff := cmp.Diff([]Event{{Step: "a"}, {Step: "b"}}, m.Events()); diff != "" {
		t.Errorf("Events (-want +got):\n%s", diff)
	}
	m.FailWith(errors.New("down"))
	if err := m.Publish(ctx, Event{Step: "c"}); err == nil {
		t.Error("Publish after FailWith succeeded")
	}
	m.FailWith(nil)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Publish(cancelled, Event{Step: "d"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v, want context.Canceled", err)
	}
	if n := len(m.Events()); n != 2 {
		t.Errorf("kept %d events, want 2", n)
	}
}
