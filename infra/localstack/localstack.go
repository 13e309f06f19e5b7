// Package localstack runs replica-tls's world on one machine without Docker: a real moto_server for
// Secrets Manager and EventBridge, the Redis Enterprise cluster simulator over HTTPS, the audit bus
// with a tap that reads audit events back through SQS, and the cluster registry in Secrets Manager.
// The local runner, the demo and the end-to-end tests use it.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/moto"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/lease"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

// Defaults match template.yaml's parameter defaults.
const (
	DefaultPrefix   = "replica-tls/"
	DefaultAuditBus = "replica-tls-audit"
	// DefaultNoticeTable is template.yaml's ExpiryNoticeTableName default: the sweep's durable record
	// of the expiry notices it sent.
	DefaultNoticeTable = "replica-tls-expiry-notices"
	// DefaultLeaseTable is the local name of template.yaml's LeaseTable: the leases every write is
	// made under.
	DefaultLeaseTable = "replica-tls-leases"
	Region            = "us-east-1"
	// Static credentials moto accepts; they are not secrets.
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// Options configures a Stack.
type Options struct {
	Topology *simulator.Topology // nil: the simulator's demo topology
	Sim      simulator.Options
	Prefix   string
	AuditBus string
	// MotoURL reuses a running moto_server (tests share one per package); empty starts a new one.
	MotoURL string
	// LeaseTable names the lease table (DefaultLeaseTable when empty; tests sharing a moto_server
	// give each stack its own).
	LeaseTable string
	Logger     *slog.Logger
}

// Stack is a running local world.
type Stack struct {
	Prefix   string
	AuditBus string
	MotoURL  string
	// Endpoint is what the functions and the stack's own clients use: MotoURL behind a proxy that
	// makes DynamoDB requests atomic, as DynamoDB is (moto.AtomicProxy).
	Endpoint   string
	LeaseTable string
	AWS        aws.Config
	Sim        *simulator.Sim
	Store      *secretstore.Store
	Tap        *awslocal.AuditTap

	moto  *moto.Server // nil when reusing one
	proxy *moto.AtomicProxy
}

// Start brings everything up. On error, whatever was started is stopped again.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	s := &Stack{Prefix: opts.Prefix, AuditBus: opts.AuditBus, MotoURL: opts.MotoURL, LeaseTable: opts.LeaseTable}
	if s.LeaseTable == "" {
		s.LeaseTable = DefaultLeaseTable
	}
	if s.Prefix == "" {
		s.Prefix = DefaultPrefix
	}
	if s.AuditBus == "" {
		s.AuditBus = DefaultAuditBus
	}
	defer func() {
		if err != nil {
			s.Close(context.WithoutCancel(ctx))
		}
	}()
	if s.MotoURL == "" {
		m, err := moto.Start(ctx)
		if err != nil {
			return nil, err
		}
		s.moto, s.MotoURL = m, m.URL
	}
	if s.proxy, err = moto.StartAtomicProxy(s.MotoURL); err != nil {
		return nil, err
	}
	s.Endpoint = s.proxy.URL
	if s.AWS, err = awslocal.Config(ctx, s.Endpoint); err != nil {
		return nil, fmt.Errorf("AWS config for moto_server: %w", err)
	}
	topo := opts.Topology
	if topo == nil {
		t, err := simulator.DemoTopology()
		if err != nil {
			return nil, fmt.Errorf("demo topology: %w", err)
		}
		topo = &t
	}
	simOpts := opts.Sim
	if simOpts.Logger == nil {
		simOpts.Logger = opts.Logger
	}
	if s.Sim, err = simulator.New(*topo, simOpts); err != nil {
		return nil, fmt.Errorf("create simulator: %w", err)
	}
	// The simulator stops when its context ends: it must live as long as the Stack, not the caller's
	// start-up deadline.
	if err := s.Sim.Start(context.WithoutCancel(ctx)); err != nil {
		s.Sim = nil
		return nil, fmt.Errorf("start simulator: %w", err)
	}
	s.Store = secretstore.New(secretsmanager.NewFromConfig(s.AWS), secretstore.Options{Prefix: s.Prefix, CacheTTL: -1})
	if s.Tap, err = awslocal.NewAuditTap(ctx, s.AWS, s.AuditBus); err != nil {
		return nil, fmt.Errorf("audit bus and tap: %w", err)
	}
	ddb := dynamodb.NewFromConfig(s.AWS)
	if err := sweep.CreateNoticeTable(ctx, ddb, DefaultNoticeTable); err != nil {
		return nil, err
	}
	if err := lease.CreateTable(ctx, ddb, s.LeaseTable); err != nil {
		return nil, fmt.Errorf("create the lease table: %w", err)
	}
	return s, nil
}

// BeginRotation plays RotateSecret for the real rotation function: the named secret (rotation turned
// on) gets an empty AWSPENDING version named token, which the function's steps then fill and promote
// (moto.AtomicProxy.BeginRotation).
func (s *Stack) BeginRotation(secretName, token string) { s.proxy.BeginRotation(secretName, token) }

// Register stores the API secret of simulated clusters (all of them when names is empty), the way an
// operator registers a cluster: URL, admin credentials and the API certificate to pin.
func (s *Stack) Register(ctx context.Context, names ...string) error {
	for _, c := range s.Sim.Clusters() {
		if len(names) > 0 && !contains(names, c.Name) {
			continue
		}
		err := s.Store.PutClusterAPI(ctx, secretstore.ClusterAPI{
			Name: c.Name, URL: c.URL, Username: c.AdminUser, Password: c.AdminPassword, CACert: c.APICertPEM,
		})
		if err != nil {
			return fmt.Errorf("register cluster %s: %w", c.Name, err)
		}
	}
	return nil
}

// Pin tags the API secrets of simulated clusters (all of them when names is empty) with their FQDN,
// as the cluster-registered function does for a newly registered cluster.
func (s *Stack) Pin(ctx context.Context, names ...string) error {
	for _, c := range s.Sim.Clusters() {
		if len(names) > 0 && !contains(names, c.Name) {
			continue
		}
		if err := s.Store.PinFQDN(ctx, c.Name, c.FQDN); err != nil {
			return fmt.Errorf("pin cluster %s: %w", c.Name, err)
		}
	}
	return nil
}

// FunctionEnv is the environment a Lambda function needs to run against this stack.
func (s *Stack) FunctionEnv() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      s.Endpoint,
		"AWS_REGION":            Region,
		"AWS_DEFAULT_REGION":    Region,
		"AWS_ACCESS_KEY_ID":     AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": SecretAccessKey,
		"SECRET_PREFIX":         s.Prefix,
		"AUDIT_BUS_NAME":        s.AuditBus,
		"LEASE_TABLE_NAME":      s.LeaseTable,
		"EXPIRY_NOTICE_TABLE":   DefaultNoticeTable,
	}
}

// Close stops what Start started. Safe to call more than once.
func (s *Stack) Close(ctx context.Context) {
	var errs []error
	if s.Tap != nil {
		errs = append(errs, s.Tap.Close(ctx))
		s.Tap = nil
	}
	if s.Sim != nil {
		errs = append(errs, s.Sim.Close())
		s.Sim = nil
	}
	if s.proxy != nil {
		errs = append(errs, s.proxy.Close())
		s.proxy = nil
	}
	if s.moto != nil {
		s.moto.Stop()
		s.moto = nil
	}
	_ = errors.Join(errs...) // best effort: everything is local and about to go away
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
