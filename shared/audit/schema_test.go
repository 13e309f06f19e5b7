package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit/schema"
	"github.com/replica-tls/replica-tls/shared/certs"
)

const testFingerprint = "3f2a9c0b6d1e4f5a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"

// fullEvent sets every field of Event, so a schema that forgot one fails the test.
func fullEvent() Event {
	on := true
	sum := certs.Summary{Fingerprint: testFingerprint, Subject: "CN=syncer.east.example.com,OU=syncer", NotAfter: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)}
	return Event{
		SchemaVersion: SchemaVersion,
		DetailType:    DetailStep,
		ID:            "0123456789abcdef0123456789abcdef",
		Time:          time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC),
		Actor:         "replica-tls-reconcile",
		RunID:         "run-1",
		Trigger:       Trigger{Kind: "replica-database-created", EventID: "a1b2"},
		Step:          "trust-syncer-certs",
		Outcome:       Succeeded,
		Cluster:       "east.example.com",
		Database:      3,
		Link:          &Link{SourceCluster: "east.example.com", SourceDatabase: 3, DestinationCluster: "west.example.com", DestinationDB: 7},
		Before:        &State{TLSMode: "disabled", ClientAuthentication: "disabled", Encryption: new(bool), LinkStatus: "in-sync"},
		After:         &State{TLSMode: "replica_ssl", ClientAuthentication: "enabled", TrustedCerts: []certs.Summary{sum}, Encryption: &on, ServerCert: &sum, LinkStatus: "syncing"},
		Changes:       []string{"tls_mode disabled -> replica_ssl", "trust syncer certificate of west.example.com"},
		Certificate:   &sum,
		Details:       map[string]any{"added": 1, "kept": 2.5, "dropped_fingerprints": []any{testFingerprint}, "forced": false, "note": nil},
		Error:         &ErrorInfo{Code: "none", Message: "all good"},
		DryRun:        false,
		DurationMs:    42,
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// mutated returns the full event's JSON with change applied to its generic form.
func mutated(t *testing.T, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(marshal(t, fullEvent()), &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	change(m)
	return marshal(t, m)
}

func TestValidateAcceptsGoodEvents(t *testing.T) {
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatalf("schema.NewValidator: %v", err)
	}
	minimal := Event{SchemaVersion: SchemaVersion, ID: "ffffffffffffffffffffffffffffffff", Time: time.Now(), RunID: "r", Trigger: Trigger{Kind: "schedule"}, Step: "sweep", Outcome: Skipped}
	tests := []struct {
		name   string
		detail []byte
	}{
		{"every field set", marshal(t, fullEvent())},
		{"only required fields", marshal(t, minimal)},
		{"time with a zone offset", mutated(t, func(m map[string]any) { m["time"] = "2026-05-06T09:08:09+02:00" })},
		{"every outcome: planned", mutated(t, func(m map[string]any) { m["outcome"] = "planned" })},
		{"every outcome: rejected", mutated(t, func(m map[string]any) { m["outcome"] = "rejected" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := v.Validate(tt.detail); err != nil {
				t.Errorf("Validate(%s) = %v, want nil", tt.detail, err)
			}
		})
	}
}

func TestValidateRejectsBadEvents(t *testing.T) {
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatalf("schema.NewValidator: %v", err)
	}
	tests := []struct {
		name   string
		detail []byte
		want   string // a part of the error that locates the problem
	}{
		{"missing step", mutated(t, func(m map[string]any) { delete(m, "step") }), "step"},
		{"missing run id", mutated(t, func(m map[string]any) { delete(m, "run_id") }), "run_id"},
		{"missing trigger kind", mutated(t, func(m map[string]any) { delete(m["trigger"].(map[string]any), "kind") }), "kind"},
		{"unknown outcome", mutated(t, func(m map[string]any) { m["outcome"] = "done" }), "/outcome"},
		{"extra top-level field", mutated(t, func(m map[string]any) { m["password"] = "x" }), "password"},
		{"extra field in trigger", mutated(t, func(m map[string]any) { m["trigger"].(map[string]any)["extra"] = 1 }), "extra"},
		{"extra field in a certificate summary", mutated(t, func(m map[string]any) { m["certificate"].(map[string]any)["pem"] = "x" }), "pem"},
		{"extra field in state", mutated(t, func(m map[string]any) { m["after"].(map[string]any)["client_key"] = "x" }), "client_key"},
		{"extra field in error", mutated(t, func(m map[string]any) { m["error"].(map[string]any)["stack"] = "x" }), "stack"},
		{"uppercase fingerprint", mutated(t, func(m map[string]any) {
			m["certificate"].(map[string]any)["fingerprint"] = strings.ToUpper(testFingerprint)
		}), "/certificate/fingerprint"},
		{"short fingerprint in trust list", mutated(t, func(m map[string]any) {
			m["after"].(map[string]any)["trusted_certs"].([]any)[0].(map[string]any)["fingerprint"] = "abc"
		}), "/after/trusted_certs/0/fingerprint"},
		{"time not a date-time", mutated(t, func(m map[string]any) { m["time"] = "yesterday" }), "/time"},
		{"wrong schema version", mutated(t, func(m map[string]any) { m["schema_version"] = "2.0" }), "/schema_version"},
		{"id not 128-bit hex", mutated(t, func(m map[string]any) { m["id"] = "not-an-id" }), "/id"},
		{"negative duration", mutated(t, func(m map[string]any) { m["duration_ms"] = -1 }), "/duration_ms"},
		{"nested object in details", mutated(t, func(m map[string]any) {
			m["details"].(map[string]any)["secret_ref"] = map[string]any{"a": 1}
		}), "/details/secret_ref"},
		{"error message over the cap", mutated(t, func(m map[string]any) {
			m["error"].(map[string]any)["message"] = strings.Repeat("x", MaxMessageLen+1)
		}), "/error/message"},
		{"not an object", []byte(`[]`), "want object"},
		{"not JSON", []byte(`{"id":`), "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.detail)
			if err == nil {
				t.Fatalf("Validate accepted %s", tt.detail)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate error = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestValidateErrorDoesNotQuoteValues(t *testing.T) {
	leak := "hunter2hunter2"
	detail := mutated(t, func(m map[string]any) {
		m["id"] = leak
		m["time"] = leak
	})
	err := schema.Validate(detail)
	if err == nil {
		t.Fatal("Validate accepted a bad id and time")
	}
	if strings.Contains(err.Error(), leak) {
		t.Errorf("Validate error quotes the offending value: %q", err)
	}
}

// TestSchemaIsStrict walks the schema: every object schema with properties must forbid others, so a
// field added to Event without a schema change cannot slip through.
func TestSchemaIsStrict(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(schema.JSON(), &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if got := doc["$id"]; got != schema.ID || !strings.Contains(schema.ID, "v"+SchemaVersion) {
		t.Errorf("$id = %v, want %s carrying version %s", got, schema.ID, SchemaVersion)
	}
	if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", got)
	}
	props := doc["properties"].(map[string]any)
	if got := props["schema_version"].(map[string]any)["const"]; got != SchemaVersion {
		t.Errorf("schema_version const = %v, want %s", got, SchemaVersion)
	}
	var objects int
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch n := v.(type) {
		case map[string]any:
			if _, ok := n["properties"]; ok {
				objects++
				if n["additionalProperties"] != false {
					t.Errorf("%s: additionalProperties = %v, want false", path, n["additionalProperties"])
				}
			}
			for k, c := range n {
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range n {
				walk(path+"/"+string(rune('0'+i)), c)
			}
		}
	}
	walk("#", doc)
	if objects < 6 {
		t.Errorf("found %d object schemas, want at least 6 (event, trigger, link, error, summary, state)", objects)
	}
}

func TestSchemaCopyIsIndependent(t *testing.T) {
	s := schema.JSON()
	s[0] = 'X'
	if schema.JSON()[0] != '{' {
		t.Error("changing the returned schema changed the embedded one")
	}
}
