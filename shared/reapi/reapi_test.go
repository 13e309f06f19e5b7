package reapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestActionFailure(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantDone bool
		wantOK   bool
		wantText string
	}{
		{"running", `{"status":"active","progress":50}`, false, false, ""},
		{"completed", `{"status":"completed"}`, true, true, ""},
		{"state machine: error", `{"status":"failed","error":"shard migration failed"}`, true, false, "shard migration failed"},
		{"task: error_code and error_message", `{"status":"failed","error_code":"insufficient_resources","error_message":"no room"}`, true, false, "insufficient_resources: no room"},
		{"task: error_code alone", `{"status":"failed","error_code":"internal_error"}`, true, false, "internal_error"},
		{"task: error_message alone", `{"status":"failed","error_message":"no room"}`, true, false, "no room"},
		{"v2: additional_info.error", `{"status":"failed","additional_info":{"error":"locked","object_type":"bdb","object_uid":"1"}}`, true, false, "locked"},
		{"all shapes, the same text once", `{"status":"failed","error":"x","error_message":"x","additional_info":{"error":"y"}}`, true, false, "x; y"},
		{"cancelled without text", `{"status":"cancelled"}`, true, false, ""},
		{"aborted", `{"status":"aborted","error_code":"internal_error"}`, true, false, "internal_error"},
		{"older vocabulary still running", `{"status":"cancelling"}`, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Action
			if err := json.Unmarshal([]byte(tc.body), &a); err != nil {
				t.Fatal(err)
			}
			done, ok := a.Done()
			if done != tc.wantDone || ok != tc.wantOK {
				t.Errorf("Done() = %v, %v; want %v, %v", done, ok, tc.wantDone, tc.wantOK)
			}
			if got := a.FailureText(); got != tc.wantText {
				t.Errorf("FailureText() = %q, want %q", got, tc.wantText)
			}
		})
	}
}

func TestCallError(t *testing.T) {
	last := &Error{Method: "GET", Path: "/v1/bdbs", StatusCode: 409, Code: "busy"}
	cause := fmt.Errorf("giving up: %w: %w", context.DeadlineExceeded, last)
	err := fmt.Errorf("list dbs on a: %w", &CallError{Code: CodeTimeout, Cluster: "a", Method: "GET", Path: "/v1/bdbs", Err: cause})
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is: timeout %v, unreachable %v, deadline %v", errors.Is(err, ErrTimeout), errors.Is(err, ErrUnreachable),
			errors.Is(err, context.DeadlineExceeded))
	}
	var api *Error
	if !errors.As(err, &api) || api != last {
		t.Errorf("errors.As should reach the wrapped API error")
	}
	if want := "list dbs on a: call timed out: giving up: context deadline exceeded: GET /v1/bdbs: HTTP 409 busy"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	texts := map[string]string{
		CodeUnreachable:      "cluster unreachable",
		CodeTimeout:          "call timed out",
		CodePartiallyApplied: "partially applied (not all nodes have been updated)",
		CodeResponseTooLarge: "response too large",
		"other":              "other",
	}
	for code, want := range texts {
		if got := (&CallError{Code: code}).Error(); got != want {
			t.Errorf("Error() of %s = %q, want %q", code, got, want)
		}
	}
}

func TestErrorCode(t *testing.T) {
	api := &Error{StatusCode: 409, Code: "busy"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"plain", errors.New("x"), ""},
		{"API error code", fmt.Errorf("w: %w", api), "busy"},
		{"API status only", &Error{StatusCode: 502}, "http_502"},
		{"call error wins over the API error it wraps", &CallError{Code: CodePartiallyApplied, Err: api}, CodePartiallyApplied},
		{"outermost call error wins", &CallError{Code: CodePartiallyApplied, Err: &CallError{Code: CodeTimeout, Err: api}}, CodePartiallyApplied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorCode(tc.err); got != tc.want {
				t.Errorf("ErrorCode = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestActionRoundTrip(t *testing.T) {
	a := Action{ActionUID: "a", Status: "failed", ErrorCode: "c", ErrorMessage: "m", AdditionalInfo: ActionInfo{Error: "e"}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Action
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(a, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	plain, _ := json.Marshal(Action{ActionUID: "a", Status: "completed"})
	if want := `{"action_uid":"a","status":"completed"}`; string(plain) != want {
		t.Errorf("zero failure fields are omitted: got %s", plain)
	}
}

func TestReplicaSourceExtra(t *testing.T) {
	tests := []struct {
		name string
		body string
		want ReplicaSource
	}{
		{"known keys only", `{"uid":1,"uri":"redis://h:1","encryption":true}`, ReplicaSource{UID: 1, URI: "redis://h:1", Encryption: true}},
		{"one unknown key among few", `{"uri":"redis://h:1","compression":3}`,
			ReplicaSource{URI: "redis://h:1", Extra: map[string]json.RawMessage{"compression": json.RawMessage(`3`)}}},
		{"unknown keys only", `{"a":1,"b":{"c":[2]}}`,
			ReplicaSource{Extra: map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`{"c":[2]}`)}}},
		{"every known key and more", `{"uid":2,"uri":"u","encryption":false,"server_cert":"S","client_cert":"C","client_key":"K",` +
			`"replication_tls_sni":"n","status":"in-sync","lag":5,"last_error":"e","last_update":"t","rdb_size":9}`,
			ReplicaSource{UID: 2, URI: "u", ServerCert: "S", ClientCert: "C", ClientKey: "K", ReplicationTLSSNI: "n",
				Status: "in-sync", Lag: 5, LastError: "e",
				Extra: map[string]json.RawMessage{"last_update": json.RawMessage(`"t"`), "rdb_size": json.RawMessage(`9`)}}},
		{"null", `null`, ReplicaSource{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got ReplicaSource
			if err := json.Unmarshal([]byte(tc.body), &got); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
