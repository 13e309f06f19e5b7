package lambdarun

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadTemplate(t *testing.T) {
	got, err := LoadTemplate(filepath.Join("testdata", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Function{
		"ReplicaCreatedFunction": {
			LogicalID: "ReplicaCreatedFunction",
			CodeDir:   "functions/replica-created",
			Env: map[string]string{
				"SECRET_PREFIX":     "replica-tls/",
				"AUDIT_BUS":         "replica-tls-audit",
				"LOG_LEVEL":         "debug",
				"REGION_NAME":       "us-east-1",
				"AUDIT_BUS_ARN":     "<unresolved: !GetAtt AuditBus.Arn>",
				"SECRET_ARN_PREFIX": "arn:aws:secretsmanager:us-east-1:123456789012:secret:replica-tls/",
				"LITERAL":           "${NotAVariable}-replica-tls-audit",
				"TOKEN":             "<unresolved: !Ref ApiToken>",
				"STACK":             "<unresolved: !Sub ${AWS::StackName}-x>",
				"RETRIES":           "3",
				"ENABLED":           "true",
				"EMPTY":             "",
			},
			Timeout:  45 * time.Second,
			MemoryMB: 256,
			Unresolved: []string{
				"Environment.Variables.AUDIT_BUS_ARN",
				"Environment.Variables.STACK",
				"Environment.Variables.TOKEN",
			},
		},
		"TLSSweepFunction": {
			LogicalID: "TLSSweepFunction",
			CodeDir:   "functions/tls-sweep",
			Env: map[string]string{
				"SECRET_PREFIX":     "replica-tls/",
				"AUDIT_BUS":         "replica-tls-audit",
				"LOG_LEVEL":         "info",
				"REGION_NAME":       "us-east-1",
				"BUS_NAME":          "replica-tls-audit",
				"QUEUE_URL":         "https://sqs.us-east-1.amazonaws.com/123456789012/sweep-dlq",
				"JOINED":            "a:replica-tls-audit:c",
				"BUS_FROM_RESOURCE": "<unresolved: !Ref AuditBus>",
				"CHOICE":            "<unresolved: !If [IsProd, a, b]>",
			},
			Timeout:  30 * time.Second,
			MemoryMB: 512,
			Unresolved: []string{
				"Environment.Variables.BUS_FROM_RESOURCE",
				"Environment.Variables.CHOICE",
			},
		},
		"CertRotationFunction": {
			LogicalID: "CertRotationFunction",
			CodeDir:   "functions/rotate-certs",
			Env: map[string]string{
				"SECRET_PREFIX": "replica-tls/",
				"AUDIT_BUS":     "replica-tls-audit",
				"LOG_LEVEL":     "info",
				"REGION_NAME":   "us-east-1",
			},
			Timeout:  120 * time.Second,
			MemoryMB: 256,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadTemplate mismatch (-want +got):\n%s", diff)
	}
}

func TestParseTemplateDefaultsAndConventions(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Function
	}{
		{
			name: "no Globals: Lambda's defaults and the folder convention",
			yaml: "Resources:\n  ReplicaCreatedFunction:\n    Type: AWS::Serverless::Function\n",
			want: Function{LogicalID: "ReplicaCreatedFunction", CodeDir: "functions/replica-created",
				Env: map[string]string{}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB},
		},
		{
			name: "an unresolvable Timeout keeps the default and is reported",
			yaml: "Resources:\n  ReplicaCreatedFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: !If [Long, 60, 3]\n",
			want: Function{LogicalID: "ReplicaCreatedFunction", CodeDir: "functions/replica-created",
				Env: map[string]string{}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB, Unresolved: []string{"Timeout"}},
		},
		{
			name: "a function value resolves what Globals could not",
			yaml: "Globals:\n  Function:\n    Environment:\n      Variables:\n        BUS: !GetAtt Bus.Arn\nResources:\n  SweepFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          BUS: local-bus\n",
			want: Function{LogicalID: "SweepFunction", CodeDir: "functions/sweep",
				Env: map[string]string{"BUS": "local-bus"}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB},
		},
		{
			name: "YAML anchors and long-form Fn::Join",
			yaml: "Parameters:\n  P: {Type: String, Default: v}\nResources:\n  AFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          X: &x {\"Fn::Join\": [\"-\", [{Ref: P}, w]]}\n          Y: *x\n",
			want: Function{LogicalID: "AFunction", CodeDir: "functions/a",
				Env: map[string]string{"X": "v-w", "Y": "v-w"}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB},
		},
		{
			name: "a parameter whose Default is not a literal stays unresolved",
			yaml: "Parameters:\n  P: {Type: String, Default: !Ref AWS::Region}\nResources:\n  AFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Environment:\n        Variables:\n          X: !Ref P\n",
			want: Function{LogicalID: "AFunction", CodeDir: "functions/a",
				Env: map[string]string{"X": "<unresolved: !Ref P>"}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB,
				Unresolved: []string{"Environment.Variables.X"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns, err := parseTemplate([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if len(fns) != 1 {
				t.Fatalf("got %d functions, want 1", len(fns))
			}
			if diff := cmp.Diff(tt.want, fns[tt.want.LogicalID]); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTemplateRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"not YAML", "Resources: [unclosed", "did not find expected"},
		{"not a mapping", "- a\n- b\n", "not a YAML mapping"},
		{"no Resources", "Parameters: {}\n", "no Resources"},
		{"code dir outside the repository", fn("Metadata:\n      LocalCodeDir: ../elsewhere\n"), `Metadata.LocalCodeDir "../elsewhere" must name a folder inside`},
		{"absolute code dir", fn("Properties:\n      CodeUri: /abs/dir\n"), `CodeUri "/abs/dir" must name a folder inside`},
		{"zero timeout", fn("Properties:\n      Timeout: 0\n"), "Timeout 0 is not a positive"},
		{"negative memory", fn("Properties:\n      MemorySize: -1\n"), "MemorySize -1 is not a positive"},
		{"variables as a list", fn("Properties:\n      Environment:\n        Variables: [A, B]\n"), "Environment.Variables is not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fns, err := parseTemplate([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if fns != nil {
				t.Errorf("got functions %v along with the error", fns)
			}
		})
	}
}

// fn wraps resource-level YAML (indented for a resource body) in a one-function template.
func fn(body string) string {
	return "Resources:\n  BadFunction:\n    Type: AWS::Serverless::Function\n    " + body
}

func TestLoadTemplateMissingFile(t *testing.T) {
	if _, err := LoadTemplate(filepath.Join(t.TempDir(), "template.yaml")); err == nil || !strings.Contains(err.Error(), "read template") {
		t.Fatalf("err = %v, want a read error", err)
	}
}

func TestKebab(t *testing.T) {
	tests := map[string]string{
		"ReplicaCreated":      "replica-created",
		"TLSSweep":            "tls-sweep",
		"RotateSyncerCert":    "rotate-syncer-cert",
		"S3Handler":           "s3-handler",
		"Sweep2Daily":         "sweep2-daily",
		"API":                 "api",
		"already-lower":       "already-lower",
		"ClusterRegisteredV2": "cluster-registered-v2",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := kebab(in); got != want {
				t.Errorf("kebab(%q) = %q, want %q", in, got, want)
			}
		})
	}
}
