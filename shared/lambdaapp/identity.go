package lambdaapp

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/cluster"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// pinnedClient is a cluster's API client that refuses the cluster when it reports a name other than
// the FQDN its registration pins, or, before it is pinned, an FQDN another registered cluster holds:
// a registered cluster that reported another cluster's name used to take over that cluster's links.
type pinnedClient struct {
	*cluster.Client
	reg   *Registry
	hosts []secretstore.ReplicationHost
}

// ReplicationHosts is the registration's host-to-database mapping (reconcile.ReplicationHoster).
func (p pinnedClient) ReplicationHosts() map[string]int {
	if len(p.hosts) == 0 {
		return nil
	}
	out := make(map[string]int, len(p.hosts))
	for _, h := range p.hosts {
		out[h.Host] = h.DB
	}
	return out
}

func (p pinnedClient) GetCluster(ctx context.Context) (reapi.Cluster, error) {
	cl, err := p.Client.GetCluster(ctx)
	if err != nil {
		return cl, err
	}
	if err := p.reg.CheckIdentity(ctx, p.Name(), cl.Name); err != nil {
		return reapi.Cluster{}, err
	}
	return cl, nil
}

// CheckIdentity refuses (a *reconcile.RejectError with CodeIdentity) a cluster whose reported name
// does not fit the registry: another name than its pinned FQDN, or, unpinned, an FQDN another
// registered cluster is pinned to.
func (r *Registry) CheckIdentity(ctx context.Context, name, reported string) error {
	got := normHost(reported)
	pin, err := r.store.PinnedFQDN(ctx, name)
	if err != nil {
		return fmt.Errorf("read the pinned FQDN of cluster %s: %w", name, err)
	}
	if pin != "" {
		if got != pin {
			return reconcile.IdentityError(fmt.Sprintf("cluster %s reports its name as %q but is registered as %q: refused", name, clip(reported), pin))
		}
		return nil
	}
	holders, err := r.store.ClustersByFQDN(ctx, []string{got})
	if err != nil {
		return fmt.Errorf("check that no other cluster holds %s: %w", clip(reported), err)
	}
	for _, h := range holders[got] {
		if h != name {
			return reconcile.IdentityError(fmt.Sprintf("cluster %s reports its name as %q, which registered cluster %s is pinned to: refused", name, clip(reported), h))
		}
	}
	return nil
}

// ClusterForHost finds the registered cluster pinned to serve host: the one whose FQDN is host or
// its longest suffix after a dot. One Secrets Manager call, whatever the size of the registry.
func (r *Registry) ClusterForHost(ctx context.Context, host string) (string, bool, error) {
	h := normHost(host)
	if h == "" || net.ParseIP(h) != nil {
		return "", false, nil // addresses resolve through the clusters' endpoints
	}
	var cands []string // longest first
	for s := h; strings.Contains(s, ".") && len(cands) < 10; {
		cands = append(cands, s)
		_, s, _ = strings.Cut(s, ".")
	}
	found, err := r.store.ClustersByFQDN(ctx, cands)
	if err != nil {
		return "", false, err
	}
	for _, c := range cands {
		switch names := found[c]; len(names) {
		case 0:
			continue
		case 1:
			return names[0], true, nil
		default:
			return "", false, reconcile.IdentityError(fmt.Sprintf("%s is pinned by several registered clusters (%s): none is trusted", c, strings.Join(names, ", ")))
		}
	}
	return "", false, nil
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".") }

// clip bounds text a cluster reported before it is quoted.
func clip(s string) string {
	if len(s) > 253 {
		return s[:253] + "..."
	}
	return s
}

// StepPin is the audit step that pins a newly registered cluster's FQDN.
const StepPin = "pin-identity"

// PinCluster pins a registered cluster to the FQDN it reported, when it is not pinned yet: audited
// started first (nothing is written unless that was accepted), then the tag. CheckIdentity has
// already refused an FQDN another cluster holds.
func (a *App) PinCluster(ctx context.Context, rec *audit.Recorder, name, fqdn string, dryRun bool) error {
	pin, err := a.Store.PinnedFQDN(ctx, name)
	if err != nil {
		return fmt.Errorf("read the pinned FQDN of %s: %w", name, err)
	}
	start := a.Now()
	e := audit.Event{Step: StepPin, Cluster: name, Details: map[string]any{"fqdn": normHost(fqdn)}}
	if pin != "" {
		e.Outcome = audit.Skipped
		return rec.Record(ctx, e)
	}
	if dryRun {
		e.Outcome, e.Changes = audit.Planned, []string{"pin cluster " + name + " to " + normHost(fqdn)}
		return rec.Record(ctx, e)
	}
	e.Outcome, e.Changes = audit.Started, []string{"pin cluster " + name + " to " + normHost(fqdn)}
	if err := rec.Record(ctx, e); err != nil {
		return fmt.Errorf("audit pinning %s (nothing written): %w", name, err)
	}
	err = a.Store.PinFQDN(ctx, name, fqdn)
	e.Outcome, e.DurationMs = audit.Succeeded, a.Now().Sub(start).Milliseconds()
	if err != nil {
		e.Outcome, e.Error = audit.Failed, &audit.ErrorInfo{Code: "pin_failed", Message: audit.Redact(err.Error())}
	}
	if aerr := rec.Record(ctx, e); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		return fmt.Errorf("pin cluster %s to %s: %w", name, normHost(fqdn), err)
	}
	return nil
}
