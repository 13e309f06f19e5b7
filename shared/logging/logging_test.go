package logging

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// decode parses each JSON line of out, dropping the timestamp after checking it is there.
func decode(t *testing.T, out *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, raw := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, raw)
		}
		if _, ok := m["timestamp"].(string); !ok {
			t.Errorf("log line has no timestamp member: %s", raw)
		}
		delete(m, "timestamp")
		lines = append(lines, m)
	}
	return lines
}

func newLogger(t *testing.T, vars map[string]string) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	logger, err := New(&out, env(vars))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return logger, &out
}

func TestRequestID(t *testing.T) {
	logger, out := newLogger(t, nil)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8f5c2a1e-req"})
	logger.InfoContext(ctx, "reconciled", "links", 3)
	logger.With("function", "sweep").WarnContext(ctx, "slow cluster")
	logger.InfoContext(context.Background(), "outside an invocation")

	want := []map[string]any{
		{"level": "INFO", "message": "reconciled", "links": float64(3), "requestId": "8f5c2a1e-req"},
		{"level": "WARN", "message": "slow cluster", "function": "sweep", "requestId": "8f5c2a1e-req"},
		{"level": "INFO", "message": "outside an invocation"},
	}
	if diff := cmp.Diff(want, decode(t, out)); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

func TestLevelFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want slog.Level
	}{
		{"nothing set: info", nil, slog.LevelInfo},
		{"Lambda TRACE", map[string]string{EnvLambdaLogLevel: "TRACE"}, LevelTrace},
		{"Lambda DEBUG", map[string]string{EnvLambdaLogLevel: "DEBUG"}, slog.LevelDebug},
		{"Lambda INFO", map[string]string{EnvLambdaLogLevel: "INFO"}, slog.LevelInfo},
		{"Lambda WARN", map[string]string{EnvLambdaLogLevel: "WARN"}, slog.LevelWarn},
		{"Lambda ERROR", map[string]string{EnvLambdaLogLevel: "ERROR"}, slog.LevelError},
		{"Lambda FATAL", map[string]string{EnvLambdaLogLevel: "FATAL"}, LevelFatal},
		{"Lambda lower case", map[string]string{EnvLambdaLogLevel: "warn"}, slog.LevelWarn},
		{"project debug", map[string]string{EnvLogLevel: "debug"}, slog.LevelDebug},
		{"project info", map[string]string{EnvLogLevel: "info"}, slog.LevelInfo},
		{"project warn", map[string]string{EnvLogLevel: "warn"}, slog.LevelWarn},
		{"project warning", map[string]string{EnvLogLevel: "warning"}, slog.LevelWarn},
		{"project error", map[string]string{EnvLogLevel: "ERROR"}, slog.LevelError},
		{"Lambda's setting wins", map[string]string{EnvLambdaLogLevel: "ERROR", EnvLogLevel: "debug"}, slog.LevelError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LevelFromEnv(env(tt.env))
			if err != nil {
				t.Fatalf("LevelFromEnv: %v", err)
			}
			if got != tt.want {
				t.Errorf("level %v, want %v", got, tt.want)
			}

			// The logger built from the same settings writes at that level and not below it.
			logger, out := newLogger(t, tt.env)
			ctx := context.Background()
			logger.Log(ctx, tt.want, "at the level")
			logger.Log(ctx, tt.want-1, "just below")
			lines := decode(t, out)
			if len(lines) != 1 || lines[0]["message"] != "at the level" {
				t.Errorf("at level %v the logger wrote %v, want only the line at the level", tt.want, lines)
			}
		})
	}
}

func TestUnknownLevelRefused(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"Lambda", map[string]string{EnvLambdaLogLevel: "VERBOSE"}, `AWS_LAMBDA_LOG_LEVEL="VERBOSE": want TRACE, DEBUG, INFO, WARN, ERROR or FATAL`},
		{"project", map[string]string{EnvLogLevel: "loud"}, `LOG_LEVEL="loud": want debug, info, warn or error`},
		{"project TRACE is Lambda's word only", map[string]string{EnvLogLevel: "trace"}, `LOG_LEVEL="trace"`},
		{"project typo under a valid Lambda level", map[string]string{EnvLambdaLogLevel: "INFO", EnvLogLevel: "dbug"}, `LOG_LEVEL="dbug"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			logger, err := New(&out, env(tt.env))
			if err == nil {
				t.Fatalf("New accepted %v", tt.env)
			}
			if logger != nil {
				t.Errorf("New returned a logger with its error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLevelNames(t *testing.T) {
	logger, out := newLogger(t, map[string]string{EnvLambdaLogLevel: "TRACE"})
	ctx := context.Background()
	for _, l := range []slog.Level{LevelTrace, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, LevelFatal, slog.LevelDebug + 1, LevelFatal + 4} {
		logger.Log(ctx, l, fmt.Sprint(int(l)))
	}
	var got []string
	for _, line := range decode(t, out) {
		got = append(got, fmt.Sprint(line["level"]))
	}
	want := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "DEBUG", "FATAL"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("level names (-want +got):\n%s", diff)
	}
}

func TestErrorRedacts(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyLine := strings.Split(keyPEM, "\n")[1] // base64 of the key, which must not survive
	const password = "s3cr3t-Pa55"
	handlerErr := fmt.Errorf("rotate syncer certificate: %w",
		fmt.Errorf("parse %s: connect redis://admin:%s@east.example.com:12000: refused", keyPEM, password))

	logger, out := newLogger(t, nil)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-9"})
	Error(ctx, logger, "handler failed", handlerErr, "cluster", "east")

	raw := out.String()
	// The user name stays (operators need it); the password goes.
	for _, secret := range []string{keyLine, "PRIVATE KEY-----", password, "admin:" + password} {
		if strings.Contains(raw, secret) {
			t.Errorf("log output contains %q:\n%s", secret, raw)
		}
	}
	want := []map[string]any{{
		"level":     "ERROR",
		"message":   "handler failed",
		"error":     "rotate syncer certificate: parse [private key]\n: connect redis://admin:[redacted]@east.example.com:12000: refused",
		"cluster":   "east",
		"requestId": "req-9",
	}}
	if diff := cmp.Diff(want, decode(t, out)); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestErrorWithoutError(t *testing.T) {
	logger, out := newLogger(t, nil)
	Error(context.Background(), logger, "invocation failed", nil)
	Error(context.Background(), nil, "no logger: nothing happens", errors.New("x"))
	want := []map[string]any{{"level": "ERROR", "message": "invocation failed", "error": ""}}
	if diff := cmp.Diff(want, decode(t, out)); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}
