package lambdaapp

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

func TestConfigFromEnv(t *testing.T) {
	defaultMetrics := metrics.Config{Namespace: "ReplicaTLS", Service: "replica-tls"}
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr bool
	}{
		{
			name: "nothing set gives the template's defaults",
			env:  map[string]string{EnvLeaseTable: "leases"},
			want: Config{SecretPrefix: "replica-tls/", AuditBus: "replica-tls-audit", DefaultScope: trigger.ScopeReplica,
				LogLevel: slog.LevelInfo, CacheTTL: 30 * time.Second, FunctionName: "replica-tls", TrustGrace: DefaultTrustGrace,
				LeaseTable: "leases", LeaseWait: DefaultLeaseWait, Metrics: defaultMetrics},
		},
		{
			name: "every variable is honoured",
			env: map[string]string{EnvSecretPrefix: "prod/rtls/", EnvAuditBus: "audit", EnvDefaultScope: "all",
				EnvLogLevel: "DEBUG", EnvCacheTTL: "5", EnvFunctionName: "fn", EnvTrustGrace: "0", EnvLeaseTable: "t", EnvLeaseWait: "10s", EnvMaxResponse: "1048576", EnvLeaseTTL: "5s",
				EnvAllowedSources: " a.b , c ", EnvAllowDowngrade: "true",
				"POWERTOOLS_METRICS_NAMESPACE": "Dev/ReplicaTLS", "POWERTOOLS_SERVICE_NAME": "rtls-dev"},
			want: Config{SecretPrefix: "prod/rtls/", AuditBus: "audit", DefaultScope: trigger.ScopeAll,
				LogLevel: slog.LevelDebug, CacheTTL: 5 * time.Second, FunctionName: "fn", LeaseTable: "t", LeaseWait: 10 * time.Second, MaxResponseBytes: 1 << 20, LeaseTTL: 5 * time.Second,
				AllowedSources: []string{"a.b", "c"}, AllowDowngrade: true,
				Metrics: metrics.Config{Namespace: "Dev/ReplicaTLS", Service: "rtls-dev"}},
		},
		{name: "a cache TTL may be a Go duration", env: map[string]string{EnvCacheTTL: "1m", EnvLeaseTable: "leases"},
			want: Config{SecretPrefix: "replica-tls/", AuditBus: "replica-tls-audit", DefaultScope: trigger.ScopeReplica,
				LogLevel: slog.LevelInfo, CacheTTL: time.Minute, FunctionName: "replica-tls", TrustGrace: DefaultTrustGrace,
				LeaseTable: "leases", LeaseWait: DefaultLeaseWait, Metrics: defaultMetrics}},
		{name: "no lease table is refused: no lease, no write", env: map[string]string{}, wantErr: true},
		{name: "a response cap too small to hold a database is refused", env: map[string]string{EnvLeaseTable: "t", EnvMaxResponse: "100"}, wantErr: true},
		{name: "a lease TTL under a second is refused", env: map[string]string{EnvLeaseTable: "t", EnvLeaseTTL: "10ms"}, wantErr: true},
		{name: "a downgrade switch that is not a boolean is refused", env: map[string]string{EnvLeaseTable: "t", EnvAllowDowngrade: "yes"}, wantErr: true},
		{name: "a metrics namespace under AWS/ is refused", env: map[string]string{EnvLeaseTable: "t", "POWERTOOLS_METRICS_NAMESPACE": "AWS/Lambda"}, wantErr: true},
		{name: "a bad lease wait is refused", env: map[string]string{EnvLeaseTable: "t", EnvLeaseWait: "-1s"}, wantErr: true},
		{name: "a negative grace period is refused", env: map[string]string{EnvTrustGrace: "-1", EnvLeaseTable: "t"}, wantErr: true},
		{name: "a prefix without a trailing slash is refused", env: map[string]string{EnvSecretPrefix: "rtls", EnvLeaseTable: "t"}, wantErr: true},
		{name: "an unknown scope is refused", env: map[string]string{EnvDefaultScope: "some", EnvLeaseTable: "t"}, wantErr: true},
		{name: "an unknown log level is refused", env: map[string]string{EnvLogLevel: "loud", EnvLeaseTable: "t"}, wantErr: true},
		{name: "a bad TTL is refused", env: map[string]string{EnvCacheTTL: "soon", EnvLeaseTable: "t"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
