package redact

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type detail struct {
	Name  string            `json:"name"`
	URI   string            `json:"uri"`
	Count int               `json:"count"`
	Tags  map[string]string `json:"tags,omitempty"`
}

type status string

func TestValue(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"int", 42, 42},
		{"float", 1.5, 1.5},
		{"bool", true, true},
		{"duration keeps its type", 3 * time.Second, 3 * time.Second},
		{"clean string", "in-sync", "in-sync"},
		{"string", "dial redis://admin:pw@h:1", "dial redis://admin:[redacted]@h:1"},
		{"named string unchanged keeps its type", status("ok"), status("ok")},
		{"named string", status("password=x"), "password=[redacted]"},
		{"error", errors.New("auth pwd=x"), "auth pwd=[redacted]"},
		{"string slice", []string{"ok", "token=abc"}, []string{"ok", "token=[redacted]"}},
		{"clean slice keeps its type", []string{"a", "b"}, []string{"a", "b"}},
		{"nested map", map[string]any{"n": 3, "inner": map[string]any{"uri": "rediss://:pw@h", "ok": false, "list": []any{1, "admin:pw@h:1"}}},
			map[string]any{"n": 3, "inner": map[string]any{"uri": "rediss://:[redacted]@h", "ok": false, "list": []any{1, "admin:[redacted]@h:1"}}}},
		{"password keys", map[string]any{"password": "hunter2", "api_key": "k", "authentication_admin_pass": "s", "SecretString": "{}", "token": ""},
			map[string]any{"password": Marker, "api_key": Marker, "authentication_admin_pass": Marker, "SecretString": Marker, "token": ""}},
		{"name keys stay", map[string]any{"secret": "replica-tls/clusters/east/api", "key": "east/1", "kinds": []string{"syncer"}},
			map[string]any{"secret": "replica-tls/clusters/east/api", "key": "east/1", "kinds": []string{"syncer"}}},
		{"a number under a password key stays", map[string]any{"password": 1234}, map[string]any{"password": 1234}},
		{"string map", map[string]string{"password": "x", "a": "b"}, map[string]any{"password": Marker, "a": "b"}},
		{"a secret in a key", map[string]any{"redis://u:pw@h": 1}, map[string]any{"redis://u:[redacted]@h": 1}},
		{"struct", detail{Name: "east", URI: "redis://admin:pw@east:1", Count: 2, Tags: map[string]string{"password": "x"}},
			map[string]any{"name": "east", "uri": "redis://admin:[redacted]@east:1", "count": json.Number("2"), "tags": map[string]any{"password": Marker}}},
		{"clean struct keeps its type", detail{Name: "east", Count: 2}, detail{Name: "east", Count: 2}},
		{"pointer to struct", &detail{URI: "redis://a:b@h"}, map[string]any{"name": "", "uri": "redis://a:[redacted]@h", "count": json.Number("0")}},
		{"slice of structs", []detail{{Name: "x", URI: "redis://a:b@h"}}, []any{map[string]any{"name": "x", "uri": "redis://a:[redacted]@h", "count": json.Number("0")}}},
		{"raw JSON", json.RawMessage(`{"password":"x","n":12345678901234567890}`), map[string]any{"password": Marker, "n": json.Number("12345678901234567890")}},
		{"cannot be encoded", make(chan int), nil}, // compared by identity below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Value(tt.in)
			if ch, ok := tt.in.(chan int); ok {
				if got != any(ch) {
					t.Errorf("Value(chan) = %v, want the value itself", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValueDoesNotModifyItsArgument(t *testing.T) {
	in := map[string]any{"uri": "redis://a:b@h", "list": []any{"password=x"}, "strs": []string{"token=y"}}
	Value(in)
	want := map[string]any{"uri": "redis://a:b@h", "list": []any{"password=x"}, "strs": []string{"token=y"}}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("argument changed (-want +got):\n%s", diff)
	}
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d: redis://admin:pw@h:1", e.code) }

func TestError(t *testing.T) {
	if Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
	clean := fmt.Errorf("open: %w", fs.ErrNotExist)
	if got := Error(clean); got != clean {
		t.Errorf("a clean error was wrapped: %v", got)
	}
	base := &codeError{code: 7}
	err := Error(fmt.Errorf("connect east: %w: %w", base, fs.ErrPermission))
	if want := "connect east: code 7: redis://admin:[redacted]@h:1: permission denied"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is lost the chain")
	}
	var ce *codeError
	if !errors.As(err, &ce) || ce.code != 7 {
		t.Errorf("errors.As lost the chain: %v", ce)
	}
	if again := Error(err); again != err {
		t.Error("a redacted error was wrapped again")
	}
	if got := fmt.Sprintf("%v %s %+v", err, err, err); got != err.Error()+" "+err.Error()+" "+err.Error() {
		t.Errorf("formatted error = %q", got)
	}
}

func BenchmarkValue(b *testing.B) {
	details := map[string]any{"uri": "redis://admin:pw@h:1", "count": 3, "warnings": []string{"a", "b"},
		"drift": []detail{{Name: "east", URI: "https://east:9443"}}}
	b.ReportAllocs()
	for b.Loop() {
		Value(details)
	}
}
