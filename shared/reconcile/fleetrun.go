package reconcile

import (
	"context"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// DefaultFleetConcurrency is how many groups of links ReconcileFleet converges at once when
// FleetOptions.Concurrency is zero.
const DefaultFleetConcurrency = 8

// FleetOptions tune ReconcileFleet.
type FleetOptions struct {
	// Concurrency bounds how many groups of links are converged at once (default
	// DefaultFleetConcurrency). Links that share a database (a source with several destinations, a
	// destination with several sources) form one group and are converged one after another in it:
	// each PUT replaces a whole list, so two writers on one database must never race.
	Concurrency int
	// StopMargin: no group starts when less than this is left before ctx's deadline. Groups already
	// started finish. Zero: groups start until ctx is done.
	StopMargin time.Duration
	// Done, when set, is called once per finished group with its links' reports, in the order the
	// links were given. Calls come from several goroutines at once.
	Done func([]LinkReport)
}

// FleetResult is the outcome of ReconcileFleet.
type FleetResult struct {
	Links  []LinkReport // one per link started, in the order the links were given
	Left   []Link       // links not started for lack of time (or because ctx ended), in order
	Groups int          // groups of links sharing a database
	Calls  int          // cluster API calls after the snapshot
	Writes int          // mutating cluster API calls
}

// ReconcileFleet converges many links at once: every link of the fleet when links is nil, else the
// given ones (from fleet.Links()). Links are grouped by the databases they touch; groups run
// concurrently, up to opts.Concurrency, and within a group the source side of a database is planned
// once for all its destinations, as ReconcileCluster does. It goes on past a link's failure: each
// report carries its own error. Bad input about one link is that link's rejection; only an invalid
// policy refuses the whole call.
//
// Time: before starting each group it checks ctx's deadline, and once less than opts.StopMargin
// is left it starts nothing more: the links not started are returned in Left, and the groups
// already running finish.
func (r *Reconciler) ReconcileFleet(ctx context.Context, fleet *Fleet, links []Link, pol Policy, opts FleetOptions) (FleetResult, error) {
	base := r.newRun(fleet, pol)
	if err := pol.Validate(); err != nil {
		return FleetResult{}, base.refuse(ctx, "", 0, nil, err)
	}
	if links == nil {
		links = base.links
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultFleetConcurrency
	}
	base.warm(ctx, links)

	groups := interleave(groupLinks(links), links)
	res := FleetResult{Links: make([]LinkReport, 0, len(links)), Groups: len(groups)}
	reports := make([][]LinkReport, len(groups))
	started := make([]bool, len(groups))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Concurrency)
	for gi, g := range groups {
		sem <- struct{}{}
		if stopNow(ctx, opts.StopMargin) {
			<-sem
			break
		}
		started[gi] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ru := base.fork()
			group := make([]Link, len(g))
			for i, li := range g {
				group[i] = links[li]
			}
			reps, _ := ru.reconcile(ctx, group, false) // each report carries its error
			mu.Lock()
			reports[gi] = reps
			res.Calls += ru.calls
			res.Writes += ru.writes
			mu.Unlock()
			if opts.Done != nil {
				opts.Done(reps)
			}
		}()
	}
	wg.Wait()

	// Back to the order the links were given.
	byLink := make([]*LinkReport, len(links))
	left := make([]bool, len(links))
	for gi, g := range groups {
		for i, li := range g {
			if started[gi] {
				byLink[li] = &reports[gi][i]
			} else {
				left[li] = true
			}
		}
	}
	for i := range links {
		switch {
		case byLink[i] != nil:
			res.Links = append(res.Links, *byLink[i])
		case left[i]:
			res.Left = append(res.Left, links[i])
		}
	}
	return res, nil
}

// stopNow reports whether no new work may start: ctx is done, or less than margin is left before
// its deadline.
func stopNow(ctx context.Context, margin time.Duration) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < margin
}

// groupLinks partitions link indexes into groups of links connected through a database they share,
// each group in link order, groups in order of their first link.
func groupLinks(links []Link) [][]int {
	parent := map[LinkEnd]LinkEnd{}
	var find func(LinkEnd) LinkEnd
	find = func(e LinkEnd) LinkEnd {
		p, ok := parent[e]
		if !ok || p == e {
			parent[e] = e
			return e
		}
		root := find(p)
		parent[e] = root
		return root
	}
	union := func(a, b LinkEnd) {
		ra, rb := find(a), find(b)
		if ra != rb {
			parent[rb] = ra
		}
	}
	for _, l := range links {
		find(l.Dest)
		if l.Err == nil {
			union(l.Dest, l.Source)
		}
	}
	index := map[LinkEnd]int{}
	var groups [][]int
	for i, l := range links {
		root := find(l.Dest)
		gi, ok := index[root]
		if !ok {
			gi = len(groups)
			index[root] = gi
			groups = append(groups, nil)
		}
		groups[gi] = append(groups[gi], i)
	}
	return groups
}

// interleave orders groups round-robin over the cluster of their first destination, so that groups
// running together spread over the clusters instead of all hitting the one cluster pair that comes
// first in name order (where a per-cluster rate limit would then set the pace).
func interleave(groups [][]int, links []Link) [][]int {
	var clusters []string
	byCluster := map[string][][]int{}
	for _, g := range groups {
		c := links[g[0]].Dest.Cluster
		if _, ok := byCluster[c]; !ok {
			clusters = append(clusters, c)
		}
		byCluster[c] = append(byCluster[c], g)
	}
	out := make([][]int, 0, len(groups))
	for len(out) < len(groups) {
		for _, c := range clusters {
			if q := byCluster[c]; len(q) > 0 {
				out = append(out, q[0])
				byCluster[c] = q[1:]
			}
		}
	}
	return out
}

// warm reads, once for the whole fleet, what every group would otherwise read or parse again: the
// syncer certificates of every cluster, the proxy certificates of the source clusters, the managed
// set, and every certificate text of the snapshot. Errors are left for the links that meet them.
func (ru *run) warm(ctx context.Context, links []Link) {
	for _, name := range ru.fleet.names() {
		if versions, err := ru.fleet.syncerVersions(ctx, ru.r.cfg.Certs, name); err == nil {
			for _, v := range versions {
				_, _ = ru.cache.parse(v.Certificate)
			}
		}
	}
	proxies := map[string]bool{}
	for _, l := range links {
		if l.Err != nil || proxies[l.Source.Cluster] {
			continue
		}
		proxies[l.Source.Cluster] = true
		if v, err := ru.fleet.proxyCurrent(ctx, ru.r.cfg.Certs, l.Source.Cluster); err == nil {
			_, _ = ru.cache.parse(v.Certificate)
		}
	}
	ru.managedSet(ctx)
	for _, name := range ru.fleet.names() {
		cs := ru.fleet.Clusters[name]
		for _, text := range []string{cs.SyncerCert, cs.ProxyCert} {
			if strings.TrimSpace(text) != "" {
				_, _ = ru.cache.parse(text)
			}
		}
		for _, db := range cs.DBs {
			for _, cc := range db.AuthenticationSSLClientCerts {
				_, _ = ru.cache.parse(cc.ClientCert)
			}
			for _, rs := range db.ReplicaSources {
				if strings.TrimSpace(rs.ServerCert) != "" {
					_, _ = ru.cache.parse(rs.ServerCert)
				}
			}
		}
	}
}

// fork is a run for one group: it shares what warm read (links, managed set, and a copy of the parse
// cache) and starts with its own record of what it read and wrote.
func (ru *run) fork() *run {
	f := *ru // a copy keeps whatever else a run carries
	f.latest = map[LinkEnd]reapi.DB{}
	f.sources = map[LinkEnd]*sourceJob{}
	f.cache = maps.Clone(ru.cache)
	f.calls, f.writes = 0, 0
	return &f
}
