package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

// TestBootstrapUnderTheEmulator runs the real bootstrap, built as the Makefile builds it, under the
// Lambda Runtime Interface Emulator with the environment template.yaml gives it: main's wiring
// (configuration, AWS clients, the notice table) is what this proves.
func TestBootstrapUnderTheEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and the emulator")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st := testkit.NewStack(t, motoURL, testkit.Options{})
	table := fmt.Sprintf("notices-%d", time.Now().UnixNano())
	if err := sweep.CreateNoticeTable(ctx, dynamodb.NewFromConfig(st.AWS), table); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bootstrap, err := lambdarun.Build(ctx, root, lambdarun.Function{LogicalID: "SweepFunction", CodeDir: "functions/sweep"}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rie, err := lambdarun.BuildRIE(ctx, root, "bin")
	if err != nil {
		t.Fatal(err)
	}
	env := st.FunctionEnv()
	for k, v := range map[string]string{
		"DEFAULT_TLS_SCOPE": "replica", "LOG_LEVEL": "info",
		sweep.EnvNoticeTable: table, sweep.EnvThresholds: "30,14,7,1", "TRUST_GRACE_DAYS": "7",
		sweep.EnvConcurrency: "16", sweep.EnvStopMargin: "60s", sweep.EnvClusterRate: "50",
		sweep.EnvClusterInFlight: "8", sweep.EnvCallTimeout: "30s",
	} {
		env[k] = v
	}
	r, err := lambdarun.Start(ctx, rie, bootstrap, env, lambdarun.Options{FunctionName: "sweep", Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stop the emulator: %v", err)
		}
	}()
	res, err := r.Invoke(ctx, readEvent(t, "sweep-scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != nil {
		t.Fatalf("function error: %v", res.FunctionError)
	}
	testkit.NoLeaks(t, st, "function response", string(res.Payload))
	var resp struct {
		Outcome string `json:"outcome"`
		Links   struct {
			Seen, Repaired int
		} `json:"link_counts"`
		Listed []json.RawMessage `json:"links"`
		Writes int               `json:"cluster_api_writes"`
	}
	if err := json.Unmarshal(res.Payload, &resp); err != nil {
		t.Fatalf("answer %s: %v", res.Payload, err)
	}
	if resp.Outcome != "succeeded" || resp.Links.Seen != 1 || resp.Links.Repaired != 1 || resp.Writes != 2 || len(resp.Listed) != 1 {
		t.Errorf("answer %s: want the demo link secured", res.Payload)
	}
	db := testkit.ReadDB(t, st, "west", 1)
	if len(db.ReplicaSources) != 1 || !db.ReplicaSources[0].Encryption {
		t.Errorf("west/1 is not encrypted after the sweep")
	}
	testkit.AuditEvents(t, st, 2*time.Second)
}
