package lambdarun

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Result
	}{
		{
			name: "success", status: 200, body: `{"ok":true}`,
			want: Result{Payload: json.RawMessage(`{"ok":true}`)},
		},
		{
			name: "null from a handler that returns only an error", status: 200, body: "null",
			want: Result{Payload: json.RawMessage(`null`)},
		},
		{
			name: "handler error comes back as HTTP 200", status: 200, body: `{"errorMessage":"boom","errorType":"echoError"}`,
			want: Result{Payload: json.RawMessage(`{"errorMessage":"boom","errorType":"echoError"}`),
				FunctionError: &FunctionError{Type: "echoError", Message: "boom"}},
		},
		{
			name: "panic comes back as HTTP 502 with a stack trace", status: 502,
			body: `{"errorMessage":"oops","errorType":"string","stackTrace":[{"path":"main.go","line":1,"label":"main"}]}`,
			want: Result{Payload: json.RawMessage(`{"errorMessage":"oops","errorType":"string","stackTrace":[{"path":"main.go","line":1,"label":"main"}]}`),
				FunctionError: &FunctionError{Type: "string", Message: "oops"}},
		},
		{
			name: "timeout is plain text", status: 200, body: "Task timed out after 1.00 seconds",
			want: Result{Payload: json.RawMessage(`{"errorMessage":"Task timed out after 1.00 seconds","errorType":"Sandbox.Timedout"}`),
				FunctionError: &FunctionError{Type: TimeoutErrorType, Message: "Task timed out after 1.00 seconds"}},
		},
		{
			name: "a payload with more fields is a success", status: 200, body: `{"errorMessage":"x","errorType":"y","data":1}`,
			want: Result{Payload: json.RawMessage(`{"errorMessage":"x","errorType":"y","data":1}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseResponse(tt.status, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResponseFailures(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"emulator failure without a document", 500, "", "HTTP 500: (empty)"},
		{"gateway timeout", 504, "", "HTTP 504"},
		{"empty success", 200, "", "not JSON"},
		{"text success", 200, "hello", `not JSON: "hello"`},
		{"long bodies are cut", 400, strings.Repeat("x", 1000), "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseResponse(tt.status, []byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long, want it cut short", len(err.Error()))
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want procStat
		ok   bool
	}{
		{
			name: "plain",
			line: "4242 (bootstrap) S 4200 4242 4200 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 7 0 987654 1000 100 18446744073709551615",
			want: procStat{proc: proc{pid: 4242, start: 987654}, ppid: 4200, pgid: 4242, state: 'S'}, ok: true,
		},
		{
			name: "command name with spaces and parentheses",
			line: "7 (a) b (c) Z 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 55 0 0",
			want: procStat{proc: proc{pid: 7, start: 55}, ppid: 1, pgid: 7, state: 'Z'}, ok: true,
		},
		{name: "truncated", line: "7 (a) S 1 7", ok: false},
		{name: "garbage", line: "no parentheses here", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStat([]byte(tt.line))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(procStat{}, proc{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
