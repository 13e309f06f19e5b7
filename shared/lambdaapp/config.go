// Package lambdaapp assembles replica-tls for a Lambda function: configuration from the environment,
// the AWS clients, the Secrets Manager store, the audit publisher, and the adapters that give the
// reconciler its registry of clusters and its certificates. Every function's main calls New once per
// container; the handler builds a Recorder and a Reconciler per invocation.
package lambdaapp

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/logging"
	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// Environment variables read by every function (template.yaml sets them from stack parameters).
const (
	EnvSecretPrefix = "SECRET_PREFIX"
	EnvAuditBus     = "AUDIT_BUS_NAME"
	EnvDefaultScope = "DEFAULT_TLS_SCOPE"
	EnvLogLevel     = "LOG_LEVEL"
	EnvCacheTTL     = "SECRET_CACHE_TTL"
	EnvFunctionName = "AWS_LAMBDA_FUNCTION_NAME"
	EnvTrustGrace   = "TRUST_GRACE_DAYS" // days a superseded syncer certificate stays trusted; 0 = forever
	EnvLeaseTable   = "LEASE_TABLE_NAME" // the DynamoDB table of leases every write is made under
	EnvLeaseWait    = "LEASE_WAIT"       // how long a run waits for a lease before answering busy
	EnvMaxResponse  = "CLUSTER_MAX_RESPONSE_BYTES"
	EnvLeaseTTL     = "LEASE_TTL" // how long a lease lasts unless renewed: how soon a killed run's lease frees
	// EnvAllowedSources lists, comma-separated, the event sources trusted to send triggers (the
	// template's AllowedEventSources; its rules filter on it too). Empty: any.
	EnvAllowedSources = "ALLOWED_EVENT_SOURCES"
	// EnvAllowDowngrade ("true") lets an event state a policy below the stack's defaults: client
	// authentication off, or a narrower TLS scope.
	EnvAllowDowngrade = "ALLOW_POLICY_DOWNGRADE"
)

// DefaultLeaseWait is how long a run waits for a lease by default: long enough for a handful of
// other runs' writes to the same database (a few seconds each), well inside a function's timeout.
const DefaultLeaseWait = 90 * time.Second

// DefaultTrustGrace is how long a superseded syncer certificate stays in trust lists by default.
const DefaultTrustGrace = 7 * 24 * time.Hour

// Config is what a function needs to know about its deployment.
type Config struct {
	SecretPrefix string
	AuditBus     string
	DefaultScope trigger.Scope
	LogLevel     slog.Level
	CacheTTL     time.Duration
	FunctionName string
	// TrustGrace is reconcile.Config.PruneAfter: a superseded syncer certificate leaves trust lists
	// this long after its successor was created, and only when no cluster presents it. 0 = never.
	TrustGrace time.Duration
	// LeaseTable is required: no lease, no write (docs/architecture.md, "Concurrency").
	LeaseTable string
	LeaseWait  time.Duration
	LeaseTTL   time.Duration // 0: the lease store's default (30 s)
	// MaxResponseBytes caps one cluster API response; 0: the client's default (16 MiB).
	MaxResponseBytes int64
	AllowedSources   []string
	AllowDowngrade   bool
	// Metrics names the CloudWatch embedded-metric-format namespace and service
	// (POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_DISABLED).
	Metrics metrics.Config
}

// ConfigFromEnv reads Config through getenv (os.Getenv in production), applying defaults and
// rejecting values that would make the function misbehave silently.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		SecretPrefix: getenv(EnvSecretPrefix),
		AuditBus:     getenv(EnvAuditBus),
		FunctionName: getenv(EnvFunctionName),
		CacheTTL:     30 * time.Second,
		TrustGrace:   DefaultTrustGrace,
		LeaseTable:   getenv(EnvLeaseTable),
		LeaseWait:    DefaultLeaseWait,
	}
	if c.LeaseTable == "" {
		return Config{}, fmt.Errorf("%s is not set: replica-tls writes only under leases held in that DynamoDB table", EnvLeaseTable)
	}
	if v := getenv(EnvLeaseWait); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("%s=%q: want a positive Go duration such as 90s", EnvLeaseWait, v)
		}
		c.LeaseWait = d
	}
	for _, src := range strings.Split(getenv(EnvAllowedSources), ",") {
		if src = strings.TrimSpace(src); src != "" {
			c.AllowedSources = append(c.AllowedSources, src)
		}
	}
	switch v := strings.ToLower(getenv(EnvAllowDowngrade)); v {
	case "", "false":
	case "true":
		c.AllowDowngrade = true
	default:
		return Config{}, fmt.Errorf("%s=%q: want true or false", EnvAllowDowngrade, v)
	}
	mc, err := metrics.ConfigFromEnv(getenv)
	if err != nil {
		return Config{}, fmt.Errorf("metrics: %w", err)
	}
	c.Metrics = mc
	if v := getenv(EnvLeaseTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 15*time.Minute {
			return Config{}, fmt.Errorf("%s=%q: want a Go duration from 1s to 15m", EnvLeaseTTL, v)
		}
		c.LeaseTTL = d
	}
	if v := getenv(EnvMaxResponse); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 64<<10 {
			return Config{}, fmt.Errorf("%s=%q: want a number of bytes of at least 65536", EnvMaxResponse, v)
		}
		c.MaxResponseBytes = n
	}
	if c.SecretPrefix == "" {
		c.SecretPrefix = "replica-tls/"
	}
	if !strings.HasSuffix(c.SecretPrefix, "/") {
		return Config{}, fmt.Errorf("%s=%q must end with /", EnvSecretPrefix, c.SecretPrefix)
	}
	if c.AuditBus == "" {
		c.AuditBus = "replica-tls-audit"
	}
	if c.FunctionName == "" {
		c.FunctionName = "replica-tls"
	}
	scope := getenv(EnvDefaultScope)
	if scope == "" {
		scope = string(trigger.ScopeReplica)
	}
	s, err := trigger.ParseScope(scope)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", EnvDefaultScope, err)
	}
	c.DefaultScope = s
	// Lambda's own log level setting (AWS_LAMBDA_LOG_LEVEL) wins over LOG_LEVEL.
	level, err := logging.LevelFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	c.LogLevel = level
	if v := getenv(EnvCacheTTL); v != "" {
		if secs, err := strconv.Atoi(v); err == nil {
			c.CacheTTL = time.Duration(secs) * time.Second
		} else if d, err := time.ParseDuration(v); err == nil {
			c.CacheTTL = d
		} else {
			return Config{}, fmt.Errorf("%s=%q: want seconds or a Go duration", EnvCacheTTL, v)
		}
	}
	if v := getenv(EnvTrustGrace); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 0 || days > 3650 {
			return Config{}, fmt.Errorf("%s=%q: want a whole number of days from 0 (never prune) to 3650", EnvTrustGrace, v)
		}
		c.TrustGrace = time.Duration(days) * 24 * time.Hour
	}
	return c, nil
}
