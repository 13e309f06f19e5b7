package reconcile

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Pruning, invariant 1: a syncer certificate superseded by a rotation (AWSPREVIOUS) stays in the trust
// lists of its cluster's sources until BOTH
//   - Config.PruneAfter has passed since that cluster's AWSCURRENT version was created (the rotation
//     that superseded it), and
//   - no cluster of the fleet presents it, as its syncer certificate or as a replica source's own
//     client certificate, knowing every registered cluster: a cluster that could not be read, or a
//     registered cluster missing from the snapshot, is unknown, and unknown keeps the certificate.
//
// PlanSource then leaves such a certificate out of the desired list (SourceInput.Prunable) and, since
// it is managed, removes it from the source DB like any managed certificate no destination needs.

// pruneInput is what prunable decides on, gathered beforehand.
type pruneInput struct {
	Destinations []DestCluster
	Presented    map[string]bool // fingerprints of every syncer certificate presented in the fleet
	Complete     func() bool     // whether the fleet holds every registered cluster; asked only if needed
	Now          time.Time
	After        time.Duration // grace period; <= 0 never prunes
}

// prunable returns the fingerprints of the AWSPREVIOUS syncer certificates of in.Destinations that may
// leave trust lists now. It does no I/O beyond in.Complete.
func prunable(pc parseCache, in pruneInput) map[string]bool {
	if in.After <= 0 {
		return nil
	}
	// A certificate that is also AWSCURRENT or AWSPENDING somewhere is never pruned.
	keep := map[string]bool{}
	for _, d := range in.Destinations {
		for _, v := range d.Syncer {
			if v.HasStage(StageCurrent) || v.HasStage(StagePending) {
				if fp, ok := fingerprintOf(pc, v.Certificate); ok {
					keep[fp] = true
				}
			}
		}
	}
	var out map[string]bool
	for _, d := range in.Destinations {
		i := slices.IndexFunc(d.Syncer, func(v CertVersion) bool { return v.HasStage(StageCurrent) })
		if i < 0 || d.Syncer[i].Created.IsZero() || in.Now.Sub(d.Syncer[i].Created) < in.After {
			continue // still in the grace period, or no way to tell when it started
		}
		for _, v := range d.Syncer {
			if !v.HasStage(StagePrevious) {
				continue
			}
			fp, ok := fingerprintOf(pc, v.Certificate)
			if !ok || keep[fp] || in.Presented[fp] {
				continue
			}
			if out == nil {
				// Only now is it worth asking whether the fleet is complete (it may cost a registry read).
				if in.Complete == nil || !in.Complete() {
					return nil
				}
				out = map[string]bool{}
			}
			out[fp] = true
		}
	}
	return out
}

// fingerprintOf is the fingerprint of a text holding exactly one certificate.
func fingerprintOf(pc parseCache, text string) (string, bool) {
	cs, err := pc.parse(text)
	if err != nil || len(cs) != 1 {
		return "", false
	}
	return cs[0].Fingerprint, true
}

// prunable is the run's pruning decision for a source DB's destination clusters.
func (ru *run) prunable(ctx context.Context, dests []DestCluster) map[string]bool {
	if ru.r.cfg.PruneAfter <= 0 || !ru.pol.Prune {
		return nil
	}
	return prunable(ru.cache, pruneInput{
		Destinations: dests,
		Presented:    ru.presentedSyncers(),
		Complete:     func() bool { return ru.fleet.holdsEveryCluster(ctx, ru.r.cfg.Registry) },
		Now:          ru.r.cfg.Now(),
		After:        ru.r.cfg.PruneAfter,
	})
}

// presentedSyncers is every syncer certificate the snapshot shows in use: each cluster's, and each
// replica source entry's own client certificate (which replaces the cluster's for that link).
func (ru *run) presentedSyncers() map[string]bool {
	out := map[string]bool{}
	for _, name := range ru.fleet.names() {
		cs := ru.fleet.Clusters[name]
		if fp, ok := fingerprintOf(ru.cache, cs.SyncerCert); ok {
			out[fp] = true
		}
		for _, db := range cs.DBs {
			for _, rs := range db.ReplicaSources {
				if strings.TrimSpace(rs.ClientCert) == "" {
					continue
				}
				if fp, ok := fingerprintOf(ru.cache, rs.ClientCert); ok {
					out[fp] = true
				}
			}
		}
	}
	return out
}

// holdsEveryCluster reports (once per fleet) whether every registered cluster was read into the
// snapshot. Any doubt (a load error, a registry that cannot be listed, a cluster registered since the
// snapshot) is no.
func (f *Fleet) holdsEveryCluster(ctx context.Context, reg Registry) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registered != nil {
		return *f.registered
	}
	complete := len(f.Errors) == 0 && reg != nil
	if complete {
		names, err := reg.ClusterNames(ctx)
		complete = err == nil && len(names) > 0
		for _, n := range names {
			if _, ok := f.Clusters[n]; !ok {
				complete = false
			}
		}
	}
	f.registered = &complete
	return complete
}
