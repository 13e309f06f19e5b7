package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

type fixture struct {
	t    *testing.T
	st   *localstack.Stack
	logs *bytes.Buffer
	h    *handler
}

// newFixture runs the function's handler, wired as main wires it, against the demo topology
// (east/1 -> west/1, unsecured) and a notice table of its own.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testkit.NewStack(t, motoURL, testkit.Options{})
	logs := &bytes.Buffer{}
	app := testkit.NewApp(st, logs)
	table := fmt.Sprintf("notices-%d", time.Now().UnixNano())
	ddb := dynamodb.NewFromConfig(st.AWS)
	if err := sweep.CreateNoticeTable(context.Background(), ddb, table); err != nil {
		t.Fatal(err)
	}
	opts, err := sweep.OptionsFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	opts.Poll = 10 * time.Millisecond
	return &fixture{t: t, st: st, logs: logs, h: &handler{app: app, sweeper: newSweeper(app, sweep.NewDynamoNotices(ddb, table), opts)}}
}

// invoke runs the handler through aws-lambda-go's real decode and encode path.
func (f *fixture) invoke(payload []byte) (map[string]any, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := lambda.NewHandler(f.h.handle).Invoke(ctx, payload)
	testkit.NoLeaks(f.t, f.st, "function logs", f.logs.String())
	testkit.NoLeaks(f.t, f.st, "function response", string(out))
	if err != nil {
		testkit.NoLeaks(f.t, f.st, "function error", err.Error())
		return nil, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		f.t.Fatalf("response is not JSON: %v\n%s", err, out)
	}
	return resp, nil
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScheduledSweepSecuresTheFleetAndReports(t *testing.T) {
	f := newFixture(t)
	resp, err := f.invoke(readEvent(t, "sweep-scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	links, _ := resp["links"].([]any)
	if resp["outcome"] != "succeeded" || len(links) != 1 || resp["cluster_api_writes"] != float64(2) {
		t.Fatalf("response %v: want succeeded, the one link secured with a write per side", resp)
	}
	if counts, _ := resp["link_counts"].(map[string]any); counts["seen"] != float64(1) || counts["repaired"] != float64(1) || counts["newly_secured"] != float64(1) {
		t.Errorf("link_counts %v, want the one link seen, repaired, newly secured", resp["link_counts"])
	}
	row := links[0].(map[string]any)
	if row["link"] != "east/1 -> west/1" || row["source_outcome"] != "succeeded" || row["destination_outcome"] != "succeeded" {
		t.Errorf("link row %v", row)
	}
	evs := testkit.AuditEvents(t, f.st, 2*time.Second)
	var sums []audit.Event
	for _, e := range evs {
		if e.DetailType == audit.DetailSweep {
			sums = append(sums, e.Event)
		}
	}
	if len(sums) != 1 || sums[0].Trigger.Kind != sweep.KindSchedule || sums[0].Trigger.EventID != "d32c5kddcf5bb8c3" {
		t.Fatalf("summaries %+v: want one, triggered by the schedule's execution", sums)
	}

	// The next scheduled run finds the fleet converged: the response lists no link, and the two
	// clusters were each read twice.
	for _, c := range []string{"east", "west"} {
		f.st.Sim.Cluster(c).ResetCalls()
	}
	resp, err = f.invoke(readEvent(t, "sweep-scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	if links, _ := resp["links"].([]any); len(links) != 0 || resp["cluster_api_calls"] != float64(4) || resp["cluster_api_writes"] != float64(0) {
		t.Errorf("converged run: response %v, want no link listed, 4 calls, no write", resp)
	}
	if n := testkit.Calls(f.st, "east") + testkit.Calls(f.st, "west"); n != 4 {
		t.Errorf("clusters saw %d calls, want 4", n)
	}
	testkit.AuditEvents(t, f.st, 2*time.Second)
}

func TestSampleEventsThroughTheHandler(t *testing.T) {
	files, err := filepath.Glob("../../events/sweep*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sweep sample events: %v", err)
	}
	// In name order the dry run comes first, on a fleet whose certificates are not recorded yet: it
	// must plan the whole change all the same (and change nothing).
	f := newFixture(t)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			resp, err := f.invoke(readEvent(t, name))
			evs := testkit.AuditEvents(t, f.st, 2*time.Second)
			if strings.Contains(name, "malformed") {
				if err == nil {
					t.Fatalf("accepted: %v", resp)
				}
				if !testkit.Has(evs, "decode-event", audit.Rejected) {
					t.Errorf("no rejected decode-event in %v", testkit.Outcomes(evs))
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error echoes a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handler: %v", err)
			}
			wantDry := strings.Contains(name, "dry-run")
			if resp["dry_run"] != wantDry {
				t.Errorf("dry_run = %v, want %v", resp["dry_run"], wantDry)
			}
			if name == "sweep-dry-run.json" {
				counts, _ := resp["link_counts"].(map[string]any)
				if counts["planned"] != float64(1) || resp["cluster_api_writes"] != float64(0) || testkit.Writes(f.st, "east")+testkit.Writes(f.st, "west") != 0 {
					t.Errorf("first dry run: %v, want the link planned and nothing written", resp)
				}
			}
			if !testkit.Has(evs, sweep.StepSweep, audit.Succeeded) {
				t.Errorf("no succeeded sweep summary in %v", testkit.Outcomes(evs))
			}
		})
	}
}
