package trigger

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func boolp(b bool) *bool { return &b }

func TestDecodeReplicaCreated(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		want      ReplicaCreated
		wantField string // "" = success expected; otherwise the field of the InvalidError
	}{
		{
			name:    "an enveloped event with only a destination gets the default scope and client auth on",
			payload: `{"id":"e1","detail-type":"Replica Database Created","source":"x","detail":{"destination":{"cluster":"west","database":1}}}`,
			want:    ReplicaCreated{Destination: Ref{"west", 1}, TLSScope: ScopeReplica, ClientAuthentication: boolp(true)},
		},
		{
			name:    "a bare payload (scheduler or direct invoke) is its own detail",
			payload: `{"destination":{"cluster":"west","database":2},"source":{"cluster":"east","database":1},"tls_scope":"all","client_authentication":false,"dry_run":true}`,
			want: ReplicaCreated{Destination: Ref{"west", 2}, Source: &Ref{"east", 1}, TLSScope: ScopeAll,
				ClientAuthentication: boolp(false), DryRun: true},
		},
		{name: "another detail-type is refused", payload: `{"detail-type":"Cluster Registered","detail":{"cluster":"east"}}`, wantField: "detail-type"},
		{name: "a missing destination is refused", payload: `{"tls_scope":"replica"}`, wantField: "destination.cluster"},
		{name: "a zero database uid is refused", payload: `{"destination":{"cluster":"west","database":0}}`, wantField: "destination.database"},
		{name: "an uppercase cluster name is refused", payload: `{"destination":{"cluster":"West","database":1}}`, wantField: "destination.cluster"},
		{name: "an unknown scope is refused", payload: `{"destination":{"cluster":"west","database":1},"tls_scope":"everything"}`, wantField: "tls_scope"},
		{name: "an unknown field is refused", payload: `{"destination":{"cluster":"west","database":1},"extra":1}`, wantField: "detail"},
		{name: "a wrong type is refused", payload: `{"destination":{"cluster":"west","database":"1"}}`, wantField: "detail"},
		{name: "self replication is refused", payload: `{"destination":{"cluster":"west","database":1},"source":{"cluster":"west","database":1}}`, wantField: "source"},
		{name: "an envelope without detail is refused", payload: `{"detail-type":"Replica Database Created"}`, wantField: "detail"},
		{name: "an array is refused", payload: `[1,2]`, wantField: ""},
		{name: "invalid JSON is refused", payload: `{"destination":`, wantField: ""},
		{name: "trailing data is refused", payload: `{"detail-type":"Replica Database Created","detail":{"destination":{"cluster":"west","database":1}} } x`, wantField: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.payload))
			var got ReplicaCreated
			if err == nil {
				got, err = DecodeReplicaCreated(env, ScopeReplica)
			}
			expectErr := tt.wantField != "" || tt.want.Destination.Cluster == ""
			if !expectErr {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("decoded (-want +got):\n%s", diff)
				}
				return
			}
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("want *InvalidError, got %v", err)
			}
			if tt.wantField != "" && inv.Field != tt.wantField {
				t.Fatalf("error field = %q, want %q (%v)", inv.Field, tt.wantField, err)
			}
		})
	}
}

func TestDecodeClusterRegistered(t *testing.T) {
	ct := func(name, event string) string {
		return `{"id":"c1","detail-type":"AWS API Call via CloudTrail","source":"aws.secretsmanager","detail":{"eventSource":"secretsmanager.amazonaws.com","eventName":"` +
			event + `","requestParameters":{"name":"` + name + `"}}}`
	}
	tests := []struct {
		name    string
		payload string
		want    string
		wantErr bool
	}{
		{name: "the custom event names the cluster", payload: `{"detail-type":"Cluster Registered","detail":{"cluster":"east"}}`, want: "east"},
		{name: "a bare payload works", payload: `{"cluster":"east-2","dry_run":true}`, want: "east-2"},
		{name: "CreateSecret of an API secret registers", payload: ct("replica-tls/clusters/east/api", "CreateSecret"), want: "east"},
		{name: "CreateSecret of a syncer secret does not", payload: ct("replica-tls/clusters/east/syncer", "CreateSecret"), wantErr: true},
		{name: "CreateSecret under another prefix does not", payload: ct("other/clusters/east/api", "CreateSecret"), wantErr: true},
		{name: "PutSecretValue does not", payload: ct("replica-tls/clusters/east/api", "PutSecretValue"), wantErr: true},
		{name: "a bad cluster name is refused", payload: `{"cluster":"East Cluster!"}`, wantErr: true},
		{name: "a missing cluster is refused", payload: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.payload))
			if err != nil {
				t.Fatalf("envelope: %v", err)
			}
			got, err := DecodeClusterRegistered(env, "replica-tls/")
			if tt.wantErr {
				var inv *InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("want *InvalidError, got %v (%+v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.Cluster != tt.want {
				t.Fatalf("cluster = %q, want %q", got.Cluster, tt.want)
			}
		})
	}
}

// TestSampleEvents decodes every file in events/: each is a fixture for sam local invoke and for the
// docker-free runner. Files named malformed-* must be rejected; the others must decode.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("../../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events found: %v", err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if strings.HasPrefix(base, "rotation-") || strings.HasPrefix(base, "sweep") || strings.HasPrefix(base, "secret-") {
			continue // decoded by their own functions' tests
		}
		t.Run(base, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(raw) {
				t.Fatalf("%s is not valid JSON", base)
			}
			rejected := strings.HasPrefix(base, "malformed-")
			env, err := ParseEnvelope(raw)
			if err == nil {
				switch {
				case strings.Contains(base, "cluster-registered"):
					_, err = DecodeClusterRegistered(env, "replica-tls/")
				case strings.Contains(base, "replica-created"):
					_, err = DecodeReplicaCreated(env, ScopeReplica)
				case !rejected:
					t.Fatalf("%s: name does not say which function it is for", base)
				}
			}
			if rejected && err == nil {
				t.Fatalf("%s decoded but must be rejected", base)
			}
			if !rejected && err != nil {
				t.Fatalf("%s rejected: %v", base, err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error echoes a value from the event: %v", err)
			}
		})
	}
}

func FuzzParseEvents(f *testing.F) {
	files, _ := filepath.Glob("../../events/*.json")
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"destination":{"cluster":"a","database":1}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		env, err := ParseEnvelope(payload)
		if err != nil {
			return
		}
		if rc, err := DecodeReplicaCreated(env, ScopeReplica); err == nil {
			if !ValidClusterName(rc.Destination.Cluster) || rc.Destination.Database <= 0 || rc.ClientAuthentication == nil {
				t.Fatalf("accepted an invalid event: %+v", rc)
			}
		}
		if cr, err := DecodeClusterRegistered(env, "replica-tls/"); err == nil && !ValidClusterName(cr.Cluster) {
			t.Fatalf("accepted an invalid cluster name %q", cr.Cluster)
		}
	})
}

func TestValidClusterName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"lower-case letters and digits", "east1", true},
		{"a hyphen inside", "us-east-1", true},
		{"a digit first", "0zone", true},
		{"63 characters", strings.Repeat("a", 63), true},
		{"64 characters", strings.Repeat("a", 64), false},
		{"empty", "", false},
		{"a hyphen first", "-east", false},
		{"upper case", "East", false},
		{"an underscore", "east_1", false},
		{"a dot", "east.1", false},
		{"a slash", "east/api", false},
		{"non-ASCII", "ést", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidClusterName(tt.in); got != tt.want {
				t.Errorf("ValidClusterName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
