package metrics

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{Namespace: "ReplicaTLS", Service: "replica-tls"}, ""},
		{"set", map[string]string{EnvNamespace: "Team/Replica TLS#1", EnvService: "sweep", EnvDisabled: "true"},
			Config{Namespace: "Team/Replica TLS#1", Service: "sweep", Disabled: true}, ""},
		{"disabled false", map[string]string{EnvDisabled: "FALSE"}, Config{Namespace: "ReplicaTLS", Service: "replica-tls"}, ""},
		{"disabled not a boolean", map[string]string{EnvDisabled: "yes"}, Config{},
			`POWERTOOLS_METRICS_DISABLED="yes": want true or false`},
		{"namespace with a bad character", map[string]string{EnvNamespace: "Replica*TLS"}, Config{},
			`POWERTOOLS_METRICS_NAMESPACE="Replica*TLS": character '*' not allowed`},
		{"namespace reserved for AWS", map[string]string{EnvNamespace: "AWS/Lambda"}, Config{},
			"AWS/ prefix is reserved"},
		{"namespace only spaces", map[string]string{EnvNamespace: "   "}, Config{}, "only spaces"},
		{"namespace too long", map[string]string{EnvNamespace: strings.Repeat("n", 256)}, Config{}, "256 characters, more than 255"},
		{"service with a control character", map[string]string{EnvService: "sweep\x07"}, Config{},
			`POWERTOOLS_SERVICE_NAME="sweep\a": byte 0x7 at 5 is not printable ASCII`},
		{"service not ASCII", map[string]string{EnvService: "swéep"}, Config{}, "not printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Config{}, "Now")); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
			if err == nil {
				if verr := got.Validate(); verr != nil {
					t.Errorf("ConfigFromEnv returned a Config that fails Validate: %v", verr)
				}
			}
		})
	}
}

func TestUnitsMatchTheSpecification(t *testing.T) {
	for u := range emfUnits {
		if !Unit(u).Valid() {
			t.Errorf("Unit(%q).Valid() = false; the specification allows it", u)
		}
	}
	for _, u := range []Unit{"", "count", "Links", "Seconds/Second", "Percent "} {
		if u.Valid() {
			t.Errorf("Unit(%q).Valid() = true; the specification does not allow it", u)
		}
	}
}
