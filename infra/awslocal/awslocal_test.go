package awslocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/moto"
	"github.com/replica-tls/replica-tls/shared/audit"
)

// motoURL is the moto_server TestMain started; empty when it is missing and REPLICA_TLS_ALLOW_SKIP=1.
var motoURL string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	srv, err := moto.Start(ctx)
	cancel()
	switch {
	case errors.Is(err, moto.ErrNotInstalled) && os.Getenv("REPLICA_TLS_ALLOW_SKIP") == "1":
		fmt.Fprintln(os.Stderr, "skipping moto_server tests:", moto.InstallHint)
	case err != nil:
		fmt.Fprintln(os.Stderr, "awslocal tests need moto_server:", err)
		if errors.Is(err, moto.ErrNotInstalled) {
			fmt.Fprintln(os.Stderr, "set REPLICA_TLS_ALLOW_SKIP=1 to run only the unit tests")
		}
		return 1
	default:
		defer srv.Stop()
		motoURL = srv.URL
	}
	return m.Run()
}

func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	if motoURL == "" {
		t.Skip(moto.InstallHint)
	}
	cfg, err := Config(t.Context(), motoURL)
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	return cfg
}

func TestConfig(t *testing.T) {
	cfg, err := Config(t.Context(), "http://127.0.0.1:1")
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("retrieve credentials: %v", err)
	}
	type summary struct {
		Region, Endpoint, KeyID string
		MaxAttempts             int
	}
	got := summary{cfg.Region, aws.ToString(cfg.BaseEndpoint), creds.AccessKeyID, cfg.RetryMaxAttempts}
	want := summary{"us-east-1", "http://127.0.0.1:1", "testing", 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if _, err := Config(t.Context(), ""); err == nil {
		t.Error("Config with an empty endpoint succeeded")
	}
}

func TestAuditTap(t *testing.T) {
	cfg := motoConfig(t)
	ctx := t.Context()
	eb := eventbridge.NewFromConfig(cfg)
	const bus = "awslocal-tap-test" // does not exist yet: NewAuditTap creates it
	tap, err := NewAuditTap(ctx, cfg, bus)
	if err != nil {
		t.Fatalf("NewAuditTap: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = tap.Close(context.Background())
		}
	})
	// A second tap on the now existing bus works too, and sees the same events.
	tap2, err := NewAuditTap(ctx, cfg, bus)
	if err != nil {
		t.Fatalf("NewAuditTap on an existing bus: %v", err)
	}
	t.Cleanup(func() { _ = tap2.Close(context.Background()) })

	ev := audit.Event{SchemaVersion: audit.SchemaVersion, ID: strings.Repeat("ab", 16), Time: time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC),
		RunID: "r", Trigger: audit.Trigger{Kind: "schedule"}, Step: "sweep", Outcome: audit.Skipped}
	detail := `{"schema_version":"1.0","id":"` + ev.ID + `","time":"2026-02-03T04:05:06Z","run_id":"r","trigger":{"kind":"schedule"},"step":"sweep","outcome":"skipped","dry_run":false,"duration_ms":0}`
	out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{EventBusName: aws.String(bus), Source: aws.String(audit.Source), DetailType: aws.String(audit.DetailSweep), Detail: aws.String(detail)},
		{EventBusName: aws.String(bus), Source: aws.String("someone-else"), DetailType: aws.String("Other"), Detail: aws.String(`{"a":1}`)},
	}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v (failed %d)", err, out.FailedEntryCount)
	}

	got, err := tap.Drain(ctx, 0)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	ev.DetailType = audit.DetailSweep
	want := []Captured{{Source: audit.Source, DetailType: audit.DetailSweep, Detail: []byte(detail), Event: ev}}
	// moto re-encodes the detail (Python spacing): compare it as JSON.
	asJSON := cmp.Transformer("json", func(r json.RawMessage) any {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return string(r)
		}
		return v
	})
	if diff := cmp.Diff(want, got, asJSON); diff != "" {
		t.Errorf("captured (-want +got); only the replica-tls event belongs here:\n%s", diff)
	}
	if again, err := tap.Drain(ctx, 0); err != nil || len(again) != 0 {
		t.Errorf("second Drain = %d events, %v; want none", len(again), err)
	}
	if other, err := tap2.Drain(ctx, 0); err != nil || len(other) != 1 {
		t.Errorf("the second tap drained %d events, %v; want 1", len(other), err)
	}

	// A message that is not an EventBridge event is an error that does not quote it.
	sq := sqs.NewFromConfig(cfg)
	if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(tap.queueURL), MessageBody: aws.String("password=hunter2")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if _, err := tap.Drain(ctx, 0); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Drain of a non-event message = %v, want an error without its content", err)
	}

	if err := tap.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	rules, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{EventBusName: aws.String(bus)})
	if err != nil {
		t.Fatalf("ListRules: %v", err)
	}
	for _, r := range rules.Rules {
		if aws.ToString(r.Name) == tap.rule {
			t.Errorf("rule %s still exists after Close", tap.rule)
		}
	}
	if len(rules.Rules) != 1 {
		t.Errorf("bus has %d rules after closing one of two taps, want 1", len(rules.Rules))
	}
	if _, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(tap.queueURL)}); err == nil {
		t.Error("queue still exists after Close")
	}
}

func TestDrainWaitsForLateEvents(t *testing.T) {
	cfg := motoConfig(t)
	ctx := t.Context()
	tap, err := NewAuditTap(ctx, cfg, "awslocal-late-test")
	if err != nil {
		t.Fatalf("NewAuditTap: %v", err)
	}
	t.Cleanup(func() { _ = tap.Close(context.Background()) })
	eb := eventbridge.NewFromConfig(cfg)
	putErr := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // so Drain starts on an empty queue
		_, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
			{EventBusName: aws.String("awslocal-late-test"), Source: aws.String(audit.Source), DetailType: aws.String(audit.DetailStep), Detail: aws.String(`{"step":"late"}`)},
		}})
		putErr <- err
	}()
	// The wait is generous so a busy machine still delivers within it; Drain returns as soon as the
	// event is there. The assertion is on what arrives, not on how fast.
	got, err := tap.Drain(ctx, time.Minute)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if err := <-putErr; err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	if len(got) != 1 || got[0].Event.Step != "late" {
		t.Errorf("Drain got %+v, want the one late event", got)
	}

	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tap.Drain(short, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Drain with a cancelled context = %v, want context.Canceled", err)
	}
}
