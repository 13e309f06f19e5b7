package lambdaapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/eventbus"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// App is everything a handler needs, built once per Lambda container.
type App struct {
	Config   Config
	Logger   *slog.Logger
	Store    *secretstore.Store
	Sink     audit.Sink
	Registry *Registry
	Now      func() time.Time
}

// New assembles an App from AWS configuration (config.LoadDefaultConfig in production; it honours
// AWS_ENDPOINT_URL, which is how the local runner points functions at moto_server).
func New(cfg Config, awsCfg aws.Config, logOut io.Writer) *App {
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	store := secretstore.New(secretsmanager.NewFromConfig(awsCfg), secretstore.Options{
		Prefix: cfg.SecretPrefix, CacheTTL: cfg.CacheTTL,
	})
	// The SDK's own retries could duplicate an accepted entry; the publisher retries failed entries itself.
	eb := eventbridge.NewFromConfig(awsCfg, func(o *eventbridge.Options) { o.RetryMaxAttempts = 1 })
	sink := eventbus.New(eb, cfg.AuditBus, eventbus.Options{Logger: logger})
	return &App{
		Config:   cfg,
		Logger:   logger,
		Store:    store,
		Sink:     sink,
		Registry: NewRegistry(store, logger),
		Now:      time.Now,
	}
}

// Run starts one invocation's audit run.
func (a *App) Run(triggerKind, eventID string, dryRun bool) *audit.Recorder {
	return audit.NewRecorder(a.Sink, audit.Run{
		Actor:   a.Config.FunctionName,
		Trigger: audit.Trigger{Kind: triggerKind, EventID: eventID},
		DryRun:  dryRun,
	}, a.Now)
}

// Reconciler returns a reconciler that audits through rec.
func (a *App) Reconciler(rec *audit.Recorder) *reconcile.Reconciler {
	return reconcile.New(reconcile.Config{
		Registry: a.Registry,
		Certs:    a.Registry,
		Auditor:  rec,
		Now:      a.Now,
		Logger:   a.Logger,
	})
}

// LoadFleet reads every registered cluster (2 calls each); clusters that fail to load are reported in
// the fleet's Errors and the rest still load.
func (a *App) LoadFleet(ctx context.Context) (*reconcile.Fleet, error) {
	names, err := a.Registry.ClusterNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registered clusters: %w", err)
	}
	fleet, err := reconcile.LoadFleet(ctx, a.Registry, names)
	if err != nil {
		return nil, fmt.Errorf("load fleet of %d clusters: %w", len(names), err)
	}
	return fleet, nil
}
