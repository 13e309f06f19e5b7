package rotation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/rotation"
)

func TestSettingsFromEnv(t *testing.T) {
	defaults := rotation.Settings{
		Validity: rotation.DefaultValidity, KeyType: certs.RSA2048,
		TestTimeout: rotation.DefaultTestTimeout, TestPoll: rotation.DefaultTestPoll, Grace: rotation.DefaultGrace,
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    rotation.Settings
		wantErr string
	}{
		{name: "nothing set: the defaults (a year, RSA-2048, 60s by 1s, 7 days)", want: defaults},
		{name: "every variable set", env: map[string]string{
			rotation.EnvValidityDays: "90", rotation.EnvKeyType: "ECDSA-P256", rotation.EnvTestTimeout: "2m",
			rotation.EnvTestPoll: "5", rotation.EnvGraceDays: "0",
		}, want: rotation.Settings{Validity: 90 * 24 * time.Hour, KeyType: certs.ECDSAP256, TestTimeout: 2 * time.Minute, TestPoll: 5 * time.Second}},
		{name: "validity not a number", env: map[string]string{rotation.EnvValidityDays: "1y"}, wantErr: rotation.EnvValidityDays},
		{name: "validity zero", env: map[string]string{rotation.EnvValidityDays: "0"}, wantErr: rotation.EnvValidityDays},
		{name: "unknown key type", env: map[string]string{rotation.EnvKeyType: "dsa"}, wantErr: rotation.EnvKeyType},
		{name: "negative timeout", env: map[string]string{rotation.EnvTestTimeout: "-1s"}, wantErr: rotation.EnvTestTimeout},
		{name: "poll not a duration", env: map[string]string{rotation.EnvTestPoll: "often"}, wantErr: rotation.EnvTestPoll},
		{name: "negative grace", env: map[string]string{rotation.EnvGraceDays: "-1"}, wantErr: rotation.EnvGraceDays},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rotation.SettingsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}
}
