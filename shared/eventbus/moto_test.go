package eventbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/moto"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/audit/schema"
)

// motoURL is the moto_server TestMain started for this package; empty when it is missing and
// REPLICA_TLS_ALLOW_SKIP=1.
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
		fmt.Fprintln(os.Stderr, "eventbus tests need moto_server:", err)
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

// motoClient returns an EventBridge client for the package's moto_server.
func motoClient(t *testing.T) (aws.Config, *eventbridge.Client) {
	t.Helper()
	if motoURL == "" {
		t.Skip(moto.InstallHint)
	}
	cfg, err := awslocal.Config(t.Context(), motoURL)
	if err != nil {
		t.Fatalf("awslocal.Config: %v", err)
	}
	return cfg, eventbridge.NewFromConfig(cfg)
}

// countingAPI counts the PutEvents calls that reach the real client.
type countingAPI struct {
	PutEventsAPI
	mu    sync.Mutex
	sizes []int
}

func (c *countingAPI) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(in.Entries))
	c.mu.Unlock()
	return c.PutEventsAPI.PutEvents(ctx, in, opts...)
}

func TestPublishToMoto(t *testing.T) {
	cfg, client := motoClient(t)
	ctx := t.Context()
	const bus = "replica-tls-audit-eventbus-test"
	tap, err := awslocal.NewAuditTap(ctx, cfg, bus)
	if err != nil {
		t.Fatalf("NewAuditTap: %v", err)
	}
	t.Cleanup(func() {
		if err := tap.Close(context.Background()); err != nil {
			t.Errorf("close tap: %v", err)
		}
	})

	// Events as a run records them, through the Recorder, collected first so they go out in one Publish.
	var mem audit.Memory
	rec := audit.NewRecorder(&mem, audit.Run{Actor: "eventbus-test", Trigger: audit.Trigger{Kind: "schedule", EventID: "e-1"}}, nil)
	detailTypes := []string{audit.DetailStep, audit.DetailDrift, audit.DetailSweep, audit.DetailExpiring, audit.DetailRotation}
	for i := range 25 {
		e := audit.Event{Step: fmt.Sprintf("step-%02d", i), Outcome: audit.Succeeded, Cluster: "east.example.com", Database: i + 1,
			DetailType: detailTypes[i%len(detailTypes)], Details: map[string]any{"index": i}}
		if err := rec.Record(ctx, e); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	sent := mem.Events()

	api := &countingAPI{PutEventsAPI: client}
	if err := New(api, bus, Options{}).Publish(ctx, sent...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if diff := cmp.Diff([]int{10, 10, 5}, api.sizes); diff != "" {
		t.Errorf("entries per PutEvents call (-want +got):\n%s", diff)
	}

	got, err := tap.Drain(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if len(got) != len(sent) {
		t.Fatalf("tap received %d events, want %d", len(got), len(sent))
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	received := make([]audit.Event, len(got))
	for i, c := range got {
		if err := v.Validate(c.Detail); err != nil {
			t.Errorf("event %s: %v", c.Event.ID, err)
		}
		if c.Source != audit.Source {
			t.Errorf("event %s: source %q, want %q", c.Event.ID, c.Source, audit.Source)
		}
		received[i] = c.Event
	}
	byID := func(evs []audit.Event) { sort.Slice(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID }) }
	byID(sent)
	byID(received)
	// JSON numbers come back as float64.
	for i := range sent {
		sent[i].Details = map[string]any{"index": float64(sent[i].Details["index"].(int))}
	}
	if diff := cmp.Diff(sent, received); diff != "" {
		t.Errorf("events received through the bus (-sent +received):\n%s", diff)
	}

	again, err := tap.Drain(ctx, 0)
	if err != nil || len(again) != 0 {
		t.Errorf("second Drain = %d events, %v; want none: the first must delete what it read", len(again), err)
	}
}

func TestPublishToMissingBusFails(t *testing.T) {
	_, client := motoClient(t)
	err := New(client, "no-such-bus", Options{MaxAttempts: 2, Backoff: time.Millisecond}).Publish(t.Context(), testEvents(3)...)
	if err == nil {
		t.Fatal("Publish to a bus that does not exist succeeded")
	}
	for _, w := range []string{"bus no-such-bus", "0 of 3 accepted", "does not exist"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	var nf *ebtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("error %v does not wrap EventBridge's ResourceNotFoundException", err)
	}
}
