package lambdaapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/awsenv"
	"github.com/replica-tls/replica-tls/shared/eventbus"
	"github.com/replica-tls/replica-tls/shared/inventory"
	"github.com/replica-tls/replica-tls/shared/lease"
	"github.com/replica-tls/replica-tls/shared/logging"
	"github.com/replica-tls/replica-tls/shared/metrics"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// App is everything a handler needs, built once per Lambda container.
type App struct {
	Config   Config
	Logger   *slog.Logger
	Store    *secretstore.Store
	Sink     audit.Sink
	Registry *Registry
	Leases   *lease.Store
	Now      func() time.Time

	metricsOut io.Writer   // where EMF lines go: the function's log
	cold       atomic.Bool // no invocation yet in this container
}

// New assembles an App from AWS configuration (awsenv.Load in production; it honours
// AWS_ENDPOINT_URL, which is how the local runner points functions at moto_server).
func New(cfg Config, awsCfg aws.Config, logOut io.Writer) *App {
	if cfg.LeaseWait <= 0 {
		cfg.LeaseWait = DefaultLeaseWait
	}
	if cfg.Metrics.Namespace == "" && cfg.Metrics.Service == "" {
		// A Config built in code rather than from the environment: the environment's defaults.
		cfg.Metrics, _ = metrics.ConfigFromEnv(func(string) string { return "" })
	}
	// JSON lines with the invocation's request id on every line (lambdacontext's member names).
	logger := logging.NewAt(logOut, cfg.LogLevel)
	store := secretstore.New(secretsmanager.NewFromConfig(awsCfg), secretstore.Options{
		Prefix: cfg.SecretPrefix, CacheTTL: cfg.CacheTTL,
	})
	// The SDK retries whole-call failures (a network blip); the publisher resends entries reported failed.
	// A rare duplicate audit event is harmless (each carries a unique id); a lost one fails the run closed.
	eb := eventbridge.NewFromConfig(awsCfg)
	sink := eventbus.New(eb, cfg.AuditBus, eventbus.Options{Logger: logger})
	app := &App{
		Config:   cfg,
		Logger:   logger,
		Store:    store,
		Sink:     sink,
		Registry: NewRegistry(store, logger, ClientLimits{MaxResponseBytes: cfg.MaxResponseBytes}),
		Leases: lease.New(dynamodb.NewFromConfig(awsCfg), cfg.LeaseTable, lease.Options{
			// A held lease usually covers one database write of well under a second: waiters poll
			// every 50 ms or so, backing off to 400 ms. An abandoned lease frees within its TTL.
			Poll: 50 * time.Millisecond,
			TTL:  cfg.LeaseTTL,
		}),
		Now: time.Now,

		metricsOut: logOut,
	}
	app.cold.Store(true)
	return app
}

// RunLeases are the leases of one run: held in DynamoDB in the run's name.
func (a *App) RunLeases(rec *audit.Recorder) reconcile.Leases {
	return runLeases{store: a.Leases, owner: rec.Run().ID, wait: a.Config.LeaseWait}
}

// Run starts one invocation's audit run.
func (a *App) Run(triggerKind, eventID string, dryRun bool) *audit.Recorder {
	return audit.NewRecorder(a.Sink, audit.Run{
		Actor:   a.Config.FunctionName,
		Trigger: audit.Trigger{Kind: triggerKind, EventID: eventID},
		DryRun:  dryRun,
	}, a.Now)
}

// Reconciler returns a reconciler that audits through rec. planned are certificates a dry run would
// have recorded (RecordFleetCertificates with dryRun): the reconciler plans as if they were stored,
// so a dry run reports the whole change instead of stopping at "no certificate stored".
func (a *App) Reconciler(rec *audit.Recorder, planned ...inventory.Result) *reconcile.Reconciler {
	var src reconcile.CertSource = a.Registry
	if p := plannedCerts(planned); len(p) > 0 {
		src = &overlay{CertSource: a.Registry, planned: p}
	}
	return reconcile.New(reconcile.Config{
		Registry:   a.Registry,
		Certs:      src,
		Auditor:    rec,
		Now:        a.Now,
		Logger:     a.Logger,
		PruneAfter: a.Config.TrustGrace,
		Policies:   a.Registry,
		Leases:     a.RunLeases(rec),
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

// LoadLinkFleet reads what an event about destination clusters needs: those clusters and the
// sources their Replica Of entries resolve to through pinned FQDNs, so an event's cost does not grow
// with the registry and an unreachable cluster off the link costs nothing. When an entry's host is
// not pinned to any cluster (clusters registered before pinning, addresses), it reads every
// registered cluster instead, as the reconciler must know who serves that host.
func (a *App) LoadLinkFleet(ctx context.Context, clusters ...string) (*reconcile.Fleet, error) {
	fleet, complete, err := reconcile.LoadLocalFleet(ctx, a.Registry, a.Registry, clusters)
	if err != nil {
		return nil, fmt.Errorf("load clusters %v and their links' sources: %w", clusters, err)
	}
	if complete {
		return fleet, nil
	}
	a.Logger.InfoContext(ctx, "a Replica Of source host is not pinned to a registered cluster: reading every registered cluster", "clusters", clusters)
	names, err := a.Registry.ClusterNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("list registered clusters: %w", err)
	}
	if err := fleet.Extend(ctx, a.Registry, names); err != nil {
		return nil, fmt.Errorf("load the other %d registered clusters: %w", len(names), err)
	}
	return fleet, nil
}

// RecordFleetCertificates makes Secrets Manager hold every certificate the fleet's clusters present:
// one that is missing (a newly registered cluster, or a certificate replaced outside replica-tls
// through the UI or rladmin) is stored as a new AWSCURRENT version, audited. A cluster whose
// certificates cannot be recorded is reported and the others go on; the reconciler then refuses the
// links that need what is missing.
func (a *App) RecordFleetCertificates(ctx context.Context, rec *audit.Recorder, fleet *reconcile.Fleet, dryRun bool) ([]inventory.Result, []string) {
	inv := &inventory.Recorder{Store: a.Store, Auditor: rec, Now: a.Now}
	var results []inventory.Result
	var warnings []string
	for _, name := range slices.Sorted(maps.Keys(fleet.Clusters)) {
		cs := fleet.Clusters[name]
		res, err := inv.RecordPresented(ctx, name, cs.SyncerCert, cs.ProxyCert, dryRun)
		results = append(results, res...)
		if err != nil {
			warnings = append(warnings, audit.Redact(err.Error()))
		}
	}
	return results, warnings
}

// FromEnvironment builds the App the way every function's main does: configuration from the
// environment, AWS configuration from Lambda's environment (awsenv; it honours AWS_ENDPOINT_URL),
// JSON logs on stderr.
func FromEnvironment(ctx context.Context) (*App, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return New(cfg, awsCfg, os.Stderr), nil
}

// RememberPolicies stores the policy an event stated for the source databases of the links it
// secured, so that later runs without a stated policy (the sweep, registrations, rotations) keep it.
// Failures are audited and returned as warnings: the links themselves are secured.
func (a *App) RememberPolicies(ctx context.Context, rec *audit.Recorder, pol reconcile.Policy, sender trigger.Envelope, reports []reconcile.LinkReport) []string {
	var warnings []string
	seen := map[string]bool{}
	for _, r := range reports {
		if r.Err != nil || r.Link.SourceCluster == "" || r.Link.SourceDatabase == 0 {
			continue
		}
		key := fmt.Sprintf("%s/%d", r.Link.SourceCluster, r.Link.SourceDatabase)
		if seen[key] {
			continue
		}
		seen[key] = true
		start := a.Now()
		p := secretstore.DBPolicy{TLSScope: string(pol.Scope), ClientAuthentication: pol.ClientAuth}
		e := audit.Event{Step: "record-policy", Cluster: r.Link.SourceCluster, Database: r.Link.SourceDatabase,
			Changes: []string{fmt.Sprintf("policy of %s: tls_scope %s, client_authentication %v", key, p.TLSScope, p.ClientAuthentication)},
			// Who asked for it: a policy change is a security decision.
			Details: map[string]any{"sender_source": clip(sender.Source), "sender_account": clip(sender.Account), "event_id": clip(sender.ID)}}
		record := func(o audit.Outcome, err error) error {
			e.Outcome, e.DurationMs = o, a.Now().Sub(start).Milliseconds()
			if err != nil {
				e.Error = &audit.ErrorInfo{Code: "store_policy", Message: audit.Redact(err.Error())}
				warnings = append(warnings, audit.Redact(fmt.Sprintf("store the policy of %s: %v", key, err)))
			}
			aerr := rec.Record(ctx, e)
			if aerr != nil {
				warnings = append(warnings, audit.Redact(fmt.Sprintf("audit the policy of %s: %v", key, aerr)))
			}
			return aerr
		}
		old, found, err := a.Store.DBPolicy(ctx, r.Link.SourceCluster, r.Link.SourceDatabase)
		switch {
		case err != nil:
			_ = record(audit.Failed, err)
			continue
		case found && old == p:
			_ = record(audit.Skipped, nil)
			continue
		}
		// Audit fails closed for Secrets Manager writes too: no started event accepted, no write.
		if record(audit.Started, nil) != nil {
			continue
		}
		if _, err := a.Store.PutDBPolicy(ctx, r.Link.SourceCluster, r.Link.SourceDatabase, p); err != nil {
			_ = record(audit.Failed, err)
			continue
		}
		_ = record(audit.Succeeded, nil)
	}
	return warnings
}
