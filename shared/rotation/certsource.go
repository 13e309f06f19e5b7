package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// StageReader reads the version of a certificate secret that carries a stage (*secretstore.Store).
type StageReader interface {
	Cert(ctx context.Context, cluster string, kind secretstore.Kind, stage string) (secretstore.CertVersion, error)
}

// WithPendingProxies returns src with reconcile.ProxyPendingSource added, reading AWSPENDING proxy
// versions from store, so that a reconciler following it keeps destinations on the proxy certificate
// a source cluster presents during a proxy rotation. Use it for every reconciler that may run while a
// proxy rotation is under way (until the registry implements ProxyPending itself).
func WithPendingProxies(src reconcile.CertSource, store StageReader) reconcile.CertSource {
	if _, ok := src.(reconcile.ProxyPendingSource); ok {
		return src
	}
	return pendingProxies{CertSource: src, store: store}
}

type pendingProxies struct {
	reconcile.CertSource
	store StageReader
}

// ProxyPending implements reconcile.ProxyPendingSource.
func (p pendingProxies) ProxyPending(ctx context.Context, cluster string) (reconcile.CertVersion, error) {
	v, err := p.store.Cert(ctx, cluster, secretstore.Proxy, secretstore.StagePending)
	switch {
	case errors.Is(err, secretstore.ErrNotFound):
		return reconcile.CertVersion{}, fmt.Errorf("pending proxy certificate of %s: %w: %w", cluster, reconcile.ErrNoCertificate, err)
	case errors.Is(err, secretstore.ErrInvalid):
		return reconcile.CertVersion{}, fmt.Errorf("pending proxy certificate of %s: %w: %w", cluster, reconcile.ErrInvalidSecret, err)
	case err != nil:
		return reconcile.CertVersion{}, fmt.Errorf("pending proxy certificate of %s: %w", cluster, err)
	}
	return reconcile.CertVersion{VersionID: v.VersionID, Stages: v.Stages, Certificate: v.Certificate, Created: v.Created}, nil
}
