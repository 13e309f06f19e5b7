package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
)

const template = "testdata/template.yaml"

func TestRunInvokesTheFunction(t *testing.T) {
	environ := []string{
		"ECHO_GREETING=from-environment", // declared by the template, then overridden by -env
		"SECRET_PREFIX=test/",            // declared by the template
		"AWS_REGION=eu-west-1",
		"AWS_ENDPOINT_URL=http://127.0.0.1:1",
		"INVOKE_TEST_UNRELATED=must-not-leak",
	}
	code, stdout, stderr := invoke(t, environ, "",
		"-fn", "EchoFunction", "-template", template, "-event", "testdata/lookup.json",
		"-env", "ECHO_GREETING=from-flag", "-env", "BUS_ARN=arn:aws:events:eu-west-1:123456789012:event-bus/local")
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitOK, stderr)
	}
	if !strings.HasPrefix(stdout, "{\n  ") {
		t.Errorf("stdout is not pretty JSON:\n%s", stdout)
	}
	var got struct {
		Greeting string             `json:"greeting"`
		Env      map[string]*string `json:"env"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("decode stdout: %v\n%s", err, stdout)
	}
	want := map[string]*string{
		"ECHO_GREETING":         ptr("from-flag"),
		"SECRET_PREFIX":         ptr("test/"),
		"BUS_ARN":               ptr("arn:aws:events:eu-west-1:123456789012:event-bus/local"),
		"AWS_REGION":            ptr("eu-west-1"),
		"AWS_ENDPOINT_URL":      ptr("http://127.0.0.1:1"),
		"INVOKE_TEST_UNRELATED": nil,
	}
	if diff := cmp.Diff(want, got.Env); diff != "" {
		t.Errorf("function environment (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"echofn: handled event", // the function's log
		"environment overrides: AWS_ENDPOINT_URL (environment), AWS_REGION (environment), BUS_ARN (-env), ECHO_GREETING (-env), SECRET_PREFIX (environment)",
		"EchoFunction answered in",
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	for _, s := range []string{"warning", "must-not-leak", "from-environment"} {
		if strings.Contains(stderr, s) {
			t.Errorf("stderr contains %q:\n%s", s, stderr)
		}
	}
}

func TestRunReportsAFunctionError(t *testing.T) {
	code, stdout, stderr := invoke(t, nil, "",
		"-fn", "EchoFunction", "-template", template, "-event", "testdata/fail.json", "-timeout", "5s")
	if code != exitFunctionError {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFunctionError, stderr)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("decode stdout: %v\n%s", err, stdout)
	}
	if diff := cmp.Diff(map[string]string{"errorType": "echoError", "errorMessage": "cluster prod-east unreachable"}, doc); diff != "" {
		t.Errorf("error document (-want +got):\n%s", diff)
	}
	for _, s := range []string{
		"EchoFunction failed after",
		`Environment.Variables.BUS_ARN has no local value: the function sees "<unresolved: !GetAtt Bus.Arn>"; set it with -env BUS_ARN=...`,
	} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
}

func TestRunReadsTheEventFromStdin(t *testing.T) {
	code, stdout, stderr := invoke(t, nil, `{"from":"stdin"}`, "-fn", "EchoFunction", "-template", template, "-event", "-")
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var got struct {
		Event map[string]string `json:"event"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"from": "stdin"}, got.Event); diff != "" {
		t.Errorf("event the function got (-want +got):\n%s", diff)
	}
}

func TestRunRejectsBadUsage(t *testing.T) {
	notJSON := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(notJSON, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"no function", "", []string{"-template", template}, "usage: invoke"},
		{"unknown function", "", []string{"-fn", "NopeFunction", "-template", template}, `no function "NopeFunction" in testdata/template.yaml; it has: EchoFunction`},
		{"bad -env", "", []string{"-fn", "EchoFunction", "-template", template, "-env", "NOEQUALS"}, "want KEY=VALUE"},
		{"event file not JSON", "", []string{"-fn", "EchoFunction", "-template", template, "-event", notJSON}, "is not valid JSON"},
		{"stdin not JSON", "nope", []string{"-fn", "EchoFunction", "-template", template, "-event", "-"}, "event stdin is not valid JSON"},
		{"missing event file", "", []string{"-fn", "EchoFunction", "-template", template, "-event", "testdata/none.json"}, "read event"},
		{"missing template", "", []string{"-fn", "EchoFunction", "-template", "testdata/none.yaml"}, "read template"},
		{"stray argument", "", []string{"-fn", "EchoFunction", "-template", template, "extra"}, "usage: invoke"},
		{"bad timeout variable", "", []string{"-fn", "EchoFunction", "-template", template, "-env", "AWS_LAMBDA_FUNCTION_TIMEOUT=soon"}, "positive whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := invoke(t, nil, tt.stdin, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, stderr)
			}
			if stdout != "" || strings.Contains(stderr, "building") {
				t.Errorf("bad usage went on to build or print: stdout %q, stderr:\n%s", stdout, stderr)
			}
		})
	}
}

func TestFunctionEnvLayers(t *testing.T) {
	fn := lambdarun.Function{LogicalID: "XFunction", Env: map[string]string{"A": "template", "B": "template", "C": "template"}}
	env, sources := functionEnv(fn,
		[]string{"B=environment", "C=environment", "AWS_ACCESS_KEY_ID=key", "HOSTNAME=box", "malformed"},
		[]string{"C=flag", "D=flag=with=equals"})
	wantEnv := map[string]string{"A": "template", "B": "environment", "C": "flag", "D": "flag=with=equals", "AWS_ACCESS_KEY_ID": "key"}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	wantSources := []string{"AWS_ACCESS_KEY_ID (environment)", "B (environment)", "C (-env)", "D (-env)"}
	if diff := cmp.Diff(wantSources, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
}

// invoke runs the command in-process with environ as its environment and returns its exit status
// and output. Bootstraps go to a temporary folder; the emulator is cached in <repo>/bin.
func invoke(t *testing.T, environ []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // includes a possible cold build
	defer cancel()
	args = append([]string{"-build-dir", t.TempDir()}, args...)
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, environ, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func ptr(s string) *string { return &s }
