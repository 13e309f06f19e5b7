package sweep

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

func envelope(detailType, detail string) string {
	return `{"version":"0","id":"evt-1","detail-type":"` + detailType + `","source":"ops","account":"123456789012",` +
		`"time":"2026-11-28T04:00:00Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		want      Request
		trigger   audit.Trigger
		wantField string // non-empty: rejected, naming this field
	}{
		{name: "the scheduler's input: bare, with its execution id", payload: `{"dry_run":false,"execution_id":"d32c5kddcf5bb8c3"}`,
			want: Request{ExecutionID: "d32c5kddcf5bb8c3"}, trigger: audit.Trigger{Kind: KindSchedule, EventID: "d32c5kddcf5bb8c3"}},
		{name: "an empty object sweeps everything", payload: `{}`, trigger: audit.Trigger{Kind: KindInvoke}},
		{name: "a bare dry run narrowed to a database", payload: ` {"cluster":"west","database":3,"dry_run":true} `,
			want: Request{Cluster: "west", Database: 3, DryRun: true}, trigger: audit.Trigger{Kind: KindInvoke}},
		{name: "a Sweep Requested envelope", payload: envelope(DetailRequested, `{"cluster":"east"}`),
			want: Request{Cluster: "east"}, trigger: audit.Trigger{Kind: KindRequested, EventID: "evt-1"}},
		{name: "another detail-type is refused", payload: envelope("Replica Database Created", `{"cluster":"east"}`), wantField: "detail-type"},
		{name: "an unknown field is refused", payload: `{"dry_run":true,"clusters":"west"}`, wantField: "detail"},
		{name: "a wrong type is refused", payload: `{"dry_run":"yes"}`, wantField: "detail"},
		{name: "a database needs its cluster", payload: `{"database":1}`, wantField: "database"},
		{name: "a negative database is refused", payload: `{"cluster":"west","database":-1}`, wantField: "database"},
		{name: "a cluster name outside the registry's rule is refused", payload: `{"cluster":"West/../x"}`, wantField: "cluster"},
		{name: "a bad execution id is refused", payload: `{"execution_id":"<aws.scheduler.execution-id> not replaced"}`, wantField: "execution_id"},
		{name: "trailing data is refused", payload: `{"dry_run":true} {"dry_run":false}`, wantField: ""},
		{name: "not an object", payload: `[1,2]`, wantField: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, tr, err := ParseRequest([]byte(tt.payload))
			rejected := tt.wantField != "" || strings.HasPrefix(tt.name, "trailing") || strings.HasPrefix(tt.name, "not an")
			if rejected {
				var inv *trigger.InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("want *trigger.InvalidError, got %v (%+v)", err, got)
				}
				if tt.wantField != "" && inv.Field != tt.wantField {
					t.Errorf("field %q, want %q (%v)", inv.Field, tt.wantField, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.trigger, tr); diff != "" {
				t.Errorf("trigger (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestNeverEchoesValues(t *testing.T) {
	for _, payload := range []string{
		`{"cluster":"hunter2-Secret!"}`,
		`{"dry_run":"hunter2"}`,
		`{"execution_id":"hunter2 hunter2"}`,
		`{"cluster":"west","password":"hunter2"}`,
	} {
		_, _, err := ParseRequest([]byte(payload))
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %v must exist and not echo the value", payload, err)
		}
	}
}

// TestSampleEvents decodes every events/sweep*.json: sam local invoke and make invoke fixtures.
// Files with "malformed" in their name must be rejected, the others accepted.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/sweep*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the sweep sample events, found %v (%v)", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			req, tr, err := ParseRequest(raw)
			if strings.Contains(file, "malformed") {
				if err == nil {
					t.Fatalf("decoded as %+v, want a rejection", req)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error echoes a value from the event: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Kind == "" {
				t.Error("no trigger kind")
			}
		})
	}
}
