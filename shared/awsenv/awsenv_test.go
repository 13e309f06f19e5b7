package awsenv

import (
	"context"
	"strings"
	"testing"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoad(t *testing.T) {
	base := map[string]string{EnvRegion: "eu-west-1", EnvAccessKeyID: "AKIDEXAMPLE", EnvSecretKey: "wJalrXUtnFEMI", EnvSessionToken: "tok"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "-" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		env      map[string]string
		region   string
		endpoint string
		attempts int
		wantErr  string
	}{
		{name: "lambda environment", env: base, region: "eu-west-1"},
		{name: "no region", env: with(EnvRegion, "-"), wantErr: "AWS_REGION is not set"},
		{name: "AWS_DEFAULT_REGION fallback", env: func() map[string]string { m := with(EnvRegion, "-"); m[EnvDefaultRegion] = "us-east-2"; return m }(), region: "us-east-2"},
		{name: "endpoint", env: with(EnvEndpointURL, "http://127.0.0.1:5000"), region: "eu-west-1", endpoint: "http://127.0.0.1:5000"},
		{name: "bad endpoint", env: with(EnvEndpointURL, "127.0.0.1:5000"), wantErr: "want an http:// or https:// URL"},
		{name: "max attempts", env: with(EnvMaxAttempts, "5"), region: "eu-west-1", attempts: 5},
		{name: "bad max attempts", env: with(EnvMaxAttempts, "0"), wantErr: "AWS_MAX_ATTEMPTS"},
		{name: "no credentials", env: map[string]string{EnvRegion: "eu-west-1"}, wantErr: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"},
		{name: "no key id", env: with(EnvAccessKeyID, "-"), wantErr: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"},
		{name: "no secret", env: with(EnvSecretKey, "-"), wantErr: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load: err %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "wJalrXUtnFEMI") {
					t.Fatalf("error carries the secret key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.Region != tc.region {
				t.Errorf("region %q, want %q", cfg.Region, tc.region)
			}
			gotEP := ""
			if cfg.BaseEndpoint != nil {
				gotEP = *cfg.BaseEndpoint
			}
			if gotEP != tc.endpoint {
				t.Errorf("endpoint %q, want %q", gotEP, tc.endpoint)
			}
			if cfg.RetryMaxAttempts != tc.attempts {
				t.Errorf("RetryMaxAttempts %d, want %d", cfg.RetryMaxAttempts, tc.attempts)
			}
			creds, err := cfg.Credentials.Retrieve(context.Background())
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if creds.AccessKeyID != "AKIDEXAMPLE" || creds.SecretAccessKey != "wJalrXUtnFEMI" || creds.SessionToken != "tok" || creds.CanExpire {
				t.Errorf("credentials %+v, want the environment's, not expiring", creds)
			}
		})
	}
}
