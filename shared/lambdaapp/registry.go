package lambdaapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/replica-tls/replica-tls/shared/cluster"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// Registry gives the reconciler its clusters and certificates from the Secrets Manager store.
// It implements reconcile.Registry and reconcile.CertSource.
type Registry struct {
	store   *secretstore.Store
	logger  *slog.Logger
	clients ClientLimits

	mu     sync.Mutex
	cached map[string]cachedClient // by cluster name; rebuilt when the API secret changes
}

// ClientLimits bound what one cluster may cost a run (zero fields: the client's defaults).
type ClientLimits struct {
	MaxResponseBytes int64         // a larger response is refused, naming the cluster and route
	CallShare        float64       // a call and its retries get at most this share of the time left
	MaxCallTime      time.Duration // and never more than this
}

type cachedClient struct {
	api    secretstore.ClusterAPI
	client *cluster.Client
}

// NewRegistry returns a Registry over store.
func NewRegistry(store *secretstore.Store, logger *slog.Logger, limits ClientLimits) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, logger: logger, clients: limits, cached: map[string]cachedClient{}}
}

var (
	_ reconcile.Registry           = (*Registry)(nil)
	_ reconcile.CertSource         = (*Registry)(nil)
	_ reconcile.ProxyPendingSource = (*Registry)(nil)
	_ reconcile.PolicySource       = (*Registry)(nil)
	_ reconcile.HostResolver       = (*Registry)(nil)
)

// SourcePolicy returns the policy an event stated for a source database, if one was stored.
func (r *Registry) SourcePolicy(ctx context.Context, name string, uid int) (reconcile.Policy, bool, error) {
	p, ok, err := r.store.DBPolicy(ctx, name, uid)
	if err != nil || !ok {
		return reconcile.Policy{}, false, err
	}
	return reconcile.Policy{Scope: reconcile.Scope(p.TLSScope), ClientAuth: p.ClientAuthentication}, true, nil
}

// ClusterNames lists the registered clusters.
func (r *Registry) ClusterNames(ctx context.Context) ([]string, error) {
	return r.store.ClusterNames(ctx)
}

// Client returns an API client for a registered cluster, pinned to its stored API certificate, that
// refuses the cluster when it reports a name its registration does not allow (pinnedClient).
func (r *Registry) Client(ctx context.Context, name string) (reconcile.ClusterAPI, error) {
	c, api, err := r.client(ctx, name)
	if err != nil {
		return nil, err
	}
	return pinnedClient{Client: c, reg: r, hosts: api.ReplicationHosts}, nil
}

// ClusterClient is Client with the concrete type, for steps that need calls the reconciler does not
// (certificate updates).
func (r *Registry) ClusterClient(ctx context.Context, name string) (*cluster.Client, error) {
	c, _, err := r.client(ctx, name)
	return c, err
}

func (r *Registry) client(ctx context.Context, name string) (*cluster.Client, secretstore.ClusterAPI, error) {
	api, err := r.store.ClusterAPI(ctx, name)
	if err != nil {
		if errors.Is(err, secretstore.ErrNotFound) {
			return nil, api, fmt.Errorf("cluster %q: %w: %w", name, reconcile.ErrUnknownCluster, err)
		}
		return nil, api, fmt.Errorf("read API secret of cluster %q: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cached[name]; ok && c.api.Equal(api) {
		return c.client, api, nil
	}
	c, err := cluster.New(cluster.Config{
		Name: name, URL: api.URL, Username: api.Username, Password: api.Password, CACert: api.CACert,
		Logger: r.logger, MaxResponseBytes: r.clients.MaxResponseBytes,
		CallShare: r.clients.CallShare, MaxCallTime: r.clients.MaxCallTime,
	})
	if err != nil {
		return nil, api, fmt.Errorf("cluster %q: %w", name, err)
	}
	r.cached[name] = cachedClient{api: api, client: c}
	return c, api, nil
}

// SyncerVersions returns every staged version of the cluster's syncer certificate.
func (r *Registry) SyncerVersions(ctx context.Context, name string) ([]reconcile.CertVersion, error) {
	vs, err := r.store.CertVersions(ctx, name, secretstore.Syncer)
	if err != nil {
		return nil, certErr(name, "syncer", err)
	}
	out := make([]reconcile.CertVersion, 0, len(vs))
	for _, v := range vs {
		out = append(out, reconcile.CertVersion{VersionID: v.VersionID, Stages: v.Stages, Certificate: v.Certificate, Created: v.Created})
	}
	return out, nil
}

// ProxyCurrent returns the AWSCURRENT proxy certificate of the cluster.
func (r *Registry) ProxyCurrent(ctx context.Context, name string) (reconcile.CertVersion, error) {
	v, err := r.store.Cert(ctx, name, secretstore.Proxy, "AWSCURRENT")
	if err != nil {
		return reconcile.CertVersion{}, certErr(name, "proxy", err)
	}
	return reconcile.CertVersion{VersionID: v.VersionID, Stages: v.Stages, Certificate: v.Certificate, Created: v.Created}, nil
}

// ProxyPending returns the AWSPENDING proxy certificate of the cluster, so that destinations follow
// a proxy rotation under way (the source presents the pending certificate before it becomes current).
func (r *Registry) ProxyPending(ctx context.Context, name string) (reconcile.CertVersion, error) {
	v, err := r.store.Cert(ctx, name, secretstore.Proxy, secretstore.StagePending)
	if err != nil {
		return reconcile.CertVersion{}, certErr(name, "pending proxy", err)
	}
	return reconcile.CertVersion{VersionID: v.VersionID, Stages: v.Stages, Certificate: v.Certificate, Created: v.Created}, nil
}

// ClientCerts returns the client certificates a database trusts in scope all.
func (r *Registry) ClientCerts(ctx context.Context, name string, uid int) ([]string, error) {
	cs, err := r.store.ClientCerts(ctx, name, uid)
	if err != nil {
		return nil, certErr(name, fmt.Sprintf("client (database %d)", uid), err)
	}
	return cs, nil
}

func certErr(cluster, kind string, err error) error {
	if errors.Is(err, secretstore.ErrNotFound) {
		return fmt.Errorf("%s certificate of cluster %q: %w: %w", kind, cluster, reconcile.ErrNoCertificate, err)
	}
	if errors.Is(err, secretstore.ErrInvalid) {
		return fmt.Errorf("%s certificate of cluster %q: %w: %w", kind, cluster, reconcile.ErrInvalidSecret, err)
	}
	return fmt.Errorf("%s certificate of cluster %q: %w", kind, cluster, err)
}

func isNoCert(err error) bool { return errors.Is(err, reconcile.ErrNoCertificate) }
