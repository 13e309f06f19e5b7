package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// HostResolver finds the registered cluster pinned to serve a host, without reading every
// cluster: Replica Of URIs name a source endpoint host, which belongs to a cluster's FQDN.
type HostResolver interface {
	// ClusterForHost returns the cluster whose pinned FQDN is host or a suffix of it after a dot;
	// ok is false when no registered cluster is pinned to serve it.
	ClusterForHost(ctx context.Context, host string) (name string, ok bool, err error)
}

// LoadLocalFleet reads only what an event about some clusters as destinations needs: those
// clusters, and the source clusters their databases' Replica Of entries point at, resolved through
// pinned FQDNs. The cost of an event then does not grow with the registry (docs/architecture.md,
// "Concurrency"). complete is false when an entry's host resolves to no pinned cluster: the caller
// then falls back to LoadFleet of every registered cluster, as it must for clusters not pinned yet.
func LoadLocalFleet(ctx context.Context, reg Registry, res HostResolver, clusters []string) (f *Fleet, complete bool, err error) {
	f, err = LoadFleet(ctx, reg, clusters)
	if err != nil {
		return nil, false, err
	}
	complete = true
	more := map[string]bool{}
	for _, name := range clusters {
		cs, ok := f.Clusters[name]
		if !ok {
			continue // its load error is in f.Errors
		}
		for _, db := range cs.DBs {
			for _, rs := range db.ReplicaSources {
				host, _, err := endpointOf(rs.URI)
				if err != nil {
					continue // the link is refused as unresolvable when reconciled
				}
				src, ok, err := res.ClusterForHost(ctx, host)
				if err != nil {
					return nil, false, fmt.Errorf("find the cluster serving %s: %w", host, scrub(err))
				}
				if !ok {
					complete = false
					continue
				}
				if _, loaded := f.Clusters[src]; !loaded && f.Errors[src] == nil {
					more[src] = true
				}
			}
		}
	}
	if err := f.Extend(ctx, reg, slices.Sorted(maps.Keys(more))); err != nil {
		return nil, false, err
	}
	return f, complete, nil
}

// Extend reads the named clusters the fleet does not hold yet into it (two reads each). Call it
// before reconciling, never during.
func (f *Fleet) Extend(ctx context.Context, reg Registry, names []string) error {
	var missing []string
	for _, n := range names {
		if _, ok := f.Clusters[n]; !ok && f.Errors[n] == nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	g, err := LoadFleet(ctx, reg, missing)
	if err != nil {
		return err
	}
	maps.Copy(f.Clusters, g.Clusters)
	maps.Copy(f.Errors, g.Errors)
	maps.Copy(f.clients, g.clients)
	return nil
}

// CodeIdentity: a cluster reported a name other than the FQDN it is pinned to, or an FQDN another
// registered cluster holds. It is refused, and links never resolve through it.
const CodeIdentity = "identity_mismatch"

// IdentityError refuses a cluster whose reported name does not fit its registration.
func IdentityError(msg string) *RejectError { return reject(CodeIdentity, msg, nil) }

// CheckLink says, without any I/O or audit, whether ref resolves to links in the fleet: what
// ReconcileLink would refuse as bad input (an unknown cluster or database, a database that is not a
// replica, a source it does not replicate from). Callers check it before any other write, so that a
// rejected event writes nothing at all.
func CheckLink(fleet *Fleet, ref LinkRef, pol Policy) error {
	ru := &run{fleet: fleet, pol: pol, links: fleet.Links()}
	_, err := ru.selectLinks(ref)
	var rej *RejectError
	if errors.As(err, &rej) {
		return err
	}
	return nil // not bad input: ReconcileLink reports it as it happens
}
