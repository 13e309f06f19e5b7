package lambdaapp

import (
	"context"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/inventory"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

type certKey struct {
	cluster string
	kind    secretstore.Kind
}

// plannedCerts keeps the certificates a dry run would have stored.
func plannedCerts(results []inventory.Result) map[certKey]string {
	out := map[certKey]string{}
	for _, r := range results {
		if r.Outcome == audit.Planned && r.PEM != "" {
			out[certKey{r.Cluster, r.Kind}] = r.PEM
		}
	}
	return out
}

// overlay is a CertSource that shows planned (not stored) certificates as the new AWSCURRENT, for
// dry runs only: nothing is written anywhere.
type overlay struct {
	reconcile.CertSource
	planned map[certKey]string
}

func (o *overlay) SyncerVersions(ctx context.Context, cluster string) ([]reconcile.CertVersion, error) {
	pem, ok := o.planned[certKey{cluster, secretstore.Syncer}]
	if !ok {
		return o.CertSource.SyncerVersions(ctx, cluster)
	}
	vs, err := o.CertSource.SyncerVersions(ctx, cluster)
	if err != nil && !isNoCert(err) {
		return nil, err
	}
	out := []reconcile.CertVersion{{VersionID: "dry-run", Stages: []string{secretstore.StageCurrent}, Certificate: pem}}
	for _, v := range vs {
		// The stored AWSCURRENT would become AWSPREVIOUS.
		stages := make([]string, 0, len(v.Stages))
		for _, s := range v.Stages {
			switch s {
			case secretstore.StageCurrent:
				stages = append(stages, secretstore.StagePrevious)
			case secretstore.StagePrevious:
			default:
				stages = append(stages, s)
			}
		}
		if len(stages) > 0 {
			v.Stages = stages
			out = append(out, v)
		}
	}
	return out, nil
}

func (o *overlay) ProxyCurrent(ctx context.Context, cluster string) (reconcile.CertVersion, error) {
	if pem, ok := o.planned[certKey{cluster, secretstore.Proxy}]; ok {
		return reconcile.CertVersion{VersionID: "dry-run", Stages: []string{secretstore.StageCurrent}, Certificate: pem}, nil
	}
	return o.CertSource.ProxyCurrent(ctx, cluster)
}

// ProxyPending forwards to the underlying source, so dry runs follow a proxy rotation too.
func (o *overlay) ProxyPending(ctx context.Context, cluster string) (reconcile.CertVersion, error) {
	if p, ok := o.CertSource.(reconcile.ProxyPendingSource); ok {
		return p.ProxyPending(ctx, cluster)
	}
	return reconcile.CertVersion{}, reconcile.ErrNoCertificate
}
