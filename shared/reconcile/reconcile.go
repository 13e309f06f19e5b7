// Package reconcile converges Redis Enterprise Replica Of links to their desired TLS state: it reads
// the clusters into a Fleet snapshot, plans each side with pure functions (PlanSource,
// PlanDestination), and applies only the difference, source side first, auditing every step.
//
// It does no I/O of its own: callers pass in the small interfaces declared here (cluster API,
// registry, certificate source, auditor) and a clock.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// ClusterAPI is the Redis Enterprise REST API of one cluster.
type ClusterAPI interface {
	Name() string
	ListDBs(ctx context.Context, fields ...string) ([]reapi.DB, error)
	GetDB(ctx context.Context, uid int, fields ...string) (reapi.DB, error)
	UpdateDB(ctx context.Context, uid int, upd reapi.DBUpdate, dryRun bool) (reapi.DB, error)
	GetCluster(ctx context.Context) (reapi.Cluster, error)
	WaitForDB(ctx context.Context, uid int, actionUID string, poll time.Duration) (reapi.DB, error)
}

// Registry lists the registered clusters and makes clients for them.
type Registry interface {
	ClusterNames(ctx context.Context) ([]string, error)
	// Client returns an error wrapping ErrUnknownCluster when name is not registered.
	Client(ctx context.Context, name string) (ClusterAPI, error)
}

// CertSource reads certificates (never keys) from where they are stored: Secrets Manager.
type CertSource interface {
	// SyncerVersions returns every staged version of the cluster's syncer secret, or an error
	// wrapping ErrNoCertificate when there is none.
	SyncerVersions(ctx context.Context, cluster string) ([]CertVersion, error)
	// ProxyCurrent returns the AWSCURRENT version of the cluster's proxy secret, or an error
	// wrapping ErrNoCertificate.
	ProxyCurrent(ctx context.Context, cluster string) (CertVersion, error)
	// ClientCerts returns the client certificates to trust on a DB in scope all; nil when none.
	ClientCerts(ctx context.Context, cluster string, uid int) ([]string, error)
}

// --- proxy rotation hook ---

// ProxyPendingSource is what a CertSource also implements so that destinations follow a proxy
// rotation: while a source cluster presents the AWSPENDING version of its proxy secret, that version
// is the server certificate its destinations trust. Without it only AWSCURRENT is known, and a
// reconcile during a proxy rotation would point destinations back at the old certificate.
type ProxyPendingSource interface {
	// ProxyPending returns the AWSPENDING version of the cluster's proxy secret, or an error wrapping
	// ErrNoCertificate when there is none.
	ProxyPending(ctx context.Context, cluster string) (CertVersion, error)
}

// --- end proxy rotation hook ---

// PolicySource gives the policy stored for a source database (Policy.Stated explains when it is
// used); ok is false when none is stored.
type PolicySource interface {
	SourcePolicy(ctx context.Context, cluster string, uid int) (p Policy, ok bool, err error)
}

// Auditor records audit events. It fills run, trigger and time; nil means the event was accepted.
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// DefaultPoll is how often WaitForDB polls when Config.Poll is zero.
const DefaultPoll = 250 * time.Millisecond

// Config wires a Reconciler.
type Config struct {
	Registry Registry
	Certs    CertSource
	Auditor  Auditor
	Now      func() time.Time // default time.Now
	Poll     time.Duration    // default DefaultPoll
	Logger   *slog.Logger     // default: discard
	// PruneAfter is the grace period before a superseded (AWSPREVIOUS) syncer certificate may leave
	// trust lists, counted from its cluster's AWSCURRENT version's creation; and only when no cluster
	// presents it (prune.go). 0 never prunes.
	PruneAfter time.Duration
	// Policies, when set, gives source databases' stored policies (see Policy.Stated).
	Policies PolicySource
	// Leases coordinates writers across runs; nil: ProcessLeases (one process only).
	Leases Leases
}

// Reconciler converges links. It holds no state between calls beyond its Config.
type Reconciler struct {
	cfg Config
}

// New returns a Reconciler, filling Config defaults.
func New(cfg Config) *Reconciler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Leases == nil {
		cfg.Leases = ProcessLeases()
	}
	return &Reconciler{cfg: cfg}
}

// LinkRef names the link(s) to reconcile: a destination DB and, optionally, one of its sources.
// With SourceCluster empty every source entry of the destination DB is reconciled; with SourceDB 0
// every entry from SourceCluster.
type LinkRef struct {
	DestCluster   string
	DestDB        int
	SourceCluster string
	SourceDB      int
}

// LinkReport is what happened to one link.
type LinkReport struct {
	Link         audit.Link
	Source       SideResult
	SharedSource bool // the source side was reconciled for an earlier link of the same call
	Destination  SideResult
	Status       string // replica source status as last read: in-sync, syncing, out-of-sync
	LastError    string // replica source last_error as last read, credentials redacted
	Err          error
}

// LinkResult is the outcome of ReconcileLink.
type LinkResult struct {
	Links  []LinkReport
	Calls  int // cluster API calls, each side counted once
	Writes int // mutating cluster API calls
}

// Changed reports whether any side was written.
func (r LinkResult) Changed() bool { return r.Writes > 0 }

// ClusterResult is the outcome of ReconcileCluster.
type ClusterResult struct {
	Cluster string
	Links   []LinkReport
	Calls   int
	Writes  int
}

// ReconcileLink converges the links of a destination DB, each source side before its destination
// side. Bad input (unknown cluster or DB, an unresolvable source, a bad certificate) gives a
// *RejectError, one rejected audit event and no change on any cluster.
func (r *Reconciler) ReconcileLink(ctx context.Context, fleet *Fleet, ref LinkRef, pol Policy) (LinkResult, error) {
	what := fmt.Sprintf("reconcile %s/%d", ref.DestCluster, ref.DestDB)
	if ref.SourceCluster != "" {
		what += fmt.Sprintf(" from %s/%d", ref.SourceCluster, ref.SourceDB)
	}
	ru := r.newRun(fleet, pol)
	refLink := &audit.Link{SourceCluster: ref.SourceCluster, SourceDatabase: ref.SourceDB, DestinationCluster: ref.DestCluster, DestinationDB: ref.DestDB}
	links, err := ru.selectLinks(ref)
	if err != nil {
		return LinkResult{}, ru.refuse(ctx, ref.DestCluster, ref.DestDB, refLink, fmt.Errorf("%s: %w", what, err))
	}
	reports, err := ru.reconcile(ctx, links, true)
	res := LinkResult{Links: reports, Calls: ru.calls, Writes: ru.writes}
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

// ReconcileCluster converges every link touching a cluster, as source or destination. It goes on
// past a link's failure and returns every error joined.
func (r *Reconciler) ReconcileCluster(ctx context.Context, fleet *Fleet, cluster string, pol Policy) (ClusterResult, error) {
	ru := r.newRun(fleet, pol)
	res := ClusterResult{Cluster: cluster}
	if err := pol.Validate(); err != nil {
		return res, ru.refuse(ctx, cluster, 0, nil, fmt.Errorf("reconcile cluster %s: %w", cluster, err))
	}
	if _, ok := fleet.Clusters[cluster]; !ok {
		return res, ru.refuse(ctx, cluster, 0, nil, fmt.Errorf("reconcile cluster %s: %w", cluster, ru.missingCluster(cluster)))
	}
	var links []Link
	for _, l := range ru.links {
		if l.Dest.Cluster == cluster || (l.Err == nil && l.Source.Cluster == cluster) {
			links = append(links, l)
		}
	}
	reports, err := ru.reconcile(ctx, links, false)
	res.Links, res.Calls, res.Writes = reports, ru.calls, ru.writes
	if err != nil {
		return res, fmt.Errorf("reconcile cluster %s: %w", cluster, err)
	}
	return res, nil
}

// run is the state of one ReconcileLink or ReconcileCluster call.
type run struct {
	r       *Reconciler
	fleet   *Fleet
	pol     Policy
	links   []Link
	latest  map[LinkEnd]reapi.DB // DBs as last read back in this call
	sources map[LinkEnd]*sourceJob
	managed map[string]bool
	cache   parseCache
	calls   int
	writes  int
}

// sourceJob is one source DB, planned once with all its destinations however many links share it.
type sourceJob struct {
	key     LinkEnd
	in      SourceInput
	applied bool
	result  SideResult
	err     error // why it was refused or failed; links depending on it stop there
}

// prepared is a link whose both sides planned without error.
type prepared struct {
	link Link
	src  *sourceJob
	dest DestInput
}

func (r *Reconciler) newRun(fleet *Fleet, pol Policy) *run {
	return &run{r: r, fleet: fleet, pol: pol, links: fleet.Links(), latest: map[LinkEnd]reapi.DB{}, sources: map[LinkEnd]*sourceJob{}, cache: parseCache{}}
}

// selectLinks resolves a LinkRef to the links to reconcile, or says why it cannot.
func (ru *run) selectLinks(ref LinkRef) ([]Link, error) {
	if err := ru.pol.Validate(); err != nil {
		return nil, err
	}
	cs, ok := ru.fleet.Clusters[ref.DestCluster]
	if !ok {
		return nil, ru.missingCluster(ref.DestCluster)
	}
	db, ok := cs.DB(ref.DestDB)
	if !ok {
		return nil, reject(CodeUnknownDatabase, fmt.Sprintf("cluster %s has no database %d", ref.DestCluster, ref.DestDB), nil)
	}
	if len(db.ReplicaSources) == 0 {
		return nil, reject(CodeNotReplica, fmt.Sprintf("database %s/%d has no Replica Of source", ref.DestCluster, ref.DestDB), nil)
	}
	var all, picked []Link
	for _, l := range ru.links {
		if l.Dest == (LinkEnd{ref.DestCluster, ref.DestDB}) {
			all = append(all, l)
		}
	}
	for _, l := range all {
		switch {
		case ref.SourceCluster == "":
			picked = append(picked, l)
		case l.Err == nil && l.Source.Cluster == ref.SourceCluster && (ref.SourceDB == 0 || l.Source.DB == ref.SourceDB):
			picked = append(picked, l)
		}
	}
	for _, l := range picked {
		if l.Err != nil {
			return nil, l.Err
		}
	}
	if len(picked) > 0 {
		return picked, nil
	}
	for _, l := range all {
		if l.Err != nil {
			// The named source may be behind the entry we could not resolve.
			return nil, l.Err
		}
	}
	if _, ok := ru.fleet.Clusters[ref.SourceCluster]; !ok {
		return nil, ru.missingCluster(ref.SourceCluster)
	}
	return nil, reject(CodeUnknownLink, fmt.Sprintf("database %s/%d does not replicate from %s/%d", ref.DestCluster, ref.DestDB, ref.SourceCluster, ref.SourceDB), nil)
}

// missingCluster is a rejection for an unregistered cluster, or the load error of a registered one.
func (ru *run) missingCluster(name string) error {
	if err, ok := ru.fleet.Errors[name]; ok && !errors.Is(err, ErrUnknownCluster) {
		return fmt.Errorf("cluster %s could not be read: %w", name, err)
	}
	return reject(CodeUnknownCluster, fmt.Sprintf("cluster %q is not registered", name), ErrUnknownCluster)
}

// refuse records a rejected (bad input) or failed (anything else) resolve-link event for err.
func (ru *run) refuse(ctx context.Context, cluster string, uid int, link *audit.Link, err error) error {
	o := audit.Failed
	var rej *RejectError
	if errors.As(err, &rej) {
		o = audit.Rejected
	}
	s := side{step: StepResolve, cluster: cluster, uid: uid, link: link}
	e := ru.r.event(s, o, ru.pol, ru.r.cfg.Now())
	e.Error = errorInfo(err)
	err = scrub(err)
	if aerr := ru.r.record(ctx, e); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// reconcile plans every link, then applies them. allOrNothing: if any link cannot be planned, write
// nothing at all (ReconcileLink); otherwise go on with the others (ReconcileCluster).
func (ru *run) reconcile(ctx context.Context, links []Link, allOrNothing bool) ([]LinkReport, error) {
	reports := make([]LinkReport, len(links))
	var preps []*prepared
	var errs []error
	for i, l := range links {
		reports[i] = LinkReport{Link: *l.Audit()}
		p, err := ru.prepare(ctx, l, &reports[i])
		if err != nil {
			reports[i].Err = err
			errs = append(errs, err)
			continue
		}
		preps = append(preps, p)
	}
	if allOrNothing && len(errs) > 0 {
		return reports, errors.Join(errs...)
	}
	pi := 0
	for i := range reports {
		if reports[i].Err != nil {
			continue
		}
		if err := ru.applyLink(ctx, preps[pi], &reports[i]); err != nil {
			reports[i].Err = err
			errs = append(errs, err)
		}
		pi++
	}
	return reports, errors.Join(errs...)
}

// prepare gathers both sides' inputs and plans them, so bad input is refused before any write.
func (ru *run) prepare(ctx context.Context, l Link, rep *LinkReport) (*prepared, error) {
	if l.Err != nil {
		return nil, ru.refuse(ctx, l.Dest.Cluster, l.Dest.DB, l.Audit(), fmt.Errorf("resolve %s: %w", l, l.Err))
	}
	p := &prepared{link: l}
	job, shared := ru.sources[l.Source]
	if !shared {
		job = &sourceJob{key: l.Source}
		ru.sources[l.Source] = job
		in, err := ru.sourceInput(ctx, l.Source)
		if err == nil {
			job.in = in
			_, err = PlanSource(in)
		}
		if err != nil {
			job.err = fmt.Errorf("reconcile source %s for %s: %w", l.Source, l.Dest, err)
			job.result = ru.refuseSide(ctx, StepSource, l.Source, l.Audit(), job.err)
			rep.Source = job.result
			return nil, job.err
		}
	}
	rep.Source, rep.SharedSource = job.result, shared
	if job.err != nil {
		return nil, fmt.Errorf("source %s for %s not reconciled: %w", l.Source, l.Dest, job.err)
	}
	in, err := ru.destInput(ctx, l)
	if err == nil {
		p.dest = in
		_, err = PlanDestination(in)
	}
	if err != nil {
		err = fmt.Errorf("reconcile destination %s from %s: %w", l.Dest, l.Source, err)
		rep.Destination = ru.refuseSide(ctx, StepDestination, l.Dest, l.Audit(), err)
		return nil, err
	}
	p.src = job
	return p, nil
}

// refuseSide records a side that could not be planned: rejected for bad input, failed otherwise.
func (ru *run) refuseSide(ctx context.Context, step string, end LinkEnd, link *audit.Link, err error) SideResult {
	res := SideResult{Step: step, Cluster: end.Cluster, Database: end.DB, Outcome: audit.Failed, Err: err}
	var rej *RejectError
	if errors.As(err, &rej) {
		res.Outcome = audit.Rejected
	}
	e := ru.r.event(side{step: step, cluster: end.Cluster, uid: end.DB, link: link}, res.Outcome, ru.pol, ru.r.cfg.Now())
	e.Error = errorInfo(err)
	if aerr := ru.r.record(ctx, e); aerr != nil {
		res.Err = errors.Join(err, aerr)
	}
	ru.r.log(ctx, res)
	return res
}

// applyLink applies the source side (once per source DB), then, if the source is in place, the
// destination side. Both are planned again on the DBs as last read, which matters when an earlier
// link of this call changed them.
func (ru *run) applyLink(ctx context.Context, p *prepared, rep *LinkReport) error {
	l := p.link
	job := p.src
	if !job.applied {
		job.applied = true
		res, err := ru.applySide(ctx, ru.sourceSide(job, l))
		job.result = res
		if err != nil {
			job.err = fmt.Errorf("reconcile source %s for %s: %w", l.Source, l.Dest, err)
		}
		rep.SharedSource = false
	} else {
		rep.SharedSource = true
	}
	rep.Source = job.result
	if job.err != nil {
		if rep.SharedSource {
			return fmt.Errorf("destination %s left unchanged: source %s failed: %w", l.Dest, l.Source, job.err)
		}
		return job.err
	}
	res, err := ru.applySide(ctx, ru.destSide(p))
	rep.Destination = res
	if db, ok := ru.db(l.Dest); ok {
		if idx, ferr := findEntry(db, l.EntryUID, l.Entry); ferr == nil {
			rep.Status = db.ReplicaSources[idx].Status
			rep.LastError = redact(db.ReplicaSources[idx].LastError)
		}
	}
	if err != nil {
		return fmt.Errorf("reconcile destination %s from %s: %w", l.Dest, l.Source, err)
	}
	return nil
}

// applySide plans s on the DB as last known and applies the plan.
func (ru *run) applySide(ctx context.Context, s side) (SideResult, error) {
	key := LinkEnd{s.cluster, s.uid}
	cur, ok := ru.db(key)
	if !ok {
		err := fmt.Errorf("database %s is not in the snapshot", key)
		return ru.refuseSide(ctx, s.step, key, s.link, err), err
	}
	p, err := s.plan(cur)
	if err != nil {
		return ru.refuseSide(ctx, s.step, key, s.link, err), err
	}
	api, err := ru.fleet.client(ctx, ru.r.cfg.Registry, s.cluster)
	if err != nil {
		return ru.refuseSide(ctx, s.step, key, s.link, err), err
	}
	s.api = api
	res, got, err := ru.r.apply(ctx, s, p, cur, ru.pol)
	ru.latest[key] = got
	ru.calls += res.Calls
	ru.writes += res.Writes
	return res, err
}

func (ru *run) sourceSide(job *sourceJob, l Link) side {
	in := job.in
	return side{
		step: StepSource, cluster: job.key.Cluster, uid: job.key.DB, link: l.Audit(),
		plan: func(cur reapi.DB) (sidePlan, error) {
			in.DB, in.Now = cur, ru.r.cfg.Now()
			p, err := PlanSource(in)
			if err != nil {
				return sidePlan{}, err
			}
			return p.side(), nil
		},
		state: func(db reapi.DB) audit.State { return sourceState(ru.cache, db) },
	}
}

func (ru *run) destSide(pr *prepared) side {
	in := pr.dest
	return side{
		step: StepDestination, cluster: pr.link.Dest.Cluster, uid: pr.link.Dest.DB, link: pr.link.Audit(),
		plan: func(cur reapi.DB) (sidePlan, error) {
			in.DB, in.Now = cur, ru.r.cfg.Now()
			p, err := PlanDestination(in)
			if err != nil {
				return sidePlan{}, err
			}
			return p.side(), nil
		},
		state: func(db reapi.DB) audit.State {
			idx, err := findEntry(db, in.EntryUID, in.Entry)
			if err != nil {
				return audit.State{}
			}
			return destState(ru.cache, db.ReplicaSources[idx])
		},
	}
}

// sourceInput gathers what PlanSource needs for a source DB: the syncer certificates of every
// cluster hosting one of its destinations, the managed set, and client certificates in scope all.
func (ru *run) sourceInput(ctx context.Context, src LinkEnd) (SourceInput, error) {
	db, ok := ru.db(src)
	if !ok {
		return SourceInput{}, reject(CodeUnknownDatabase, fmt.Sprintf("cluster %s has no database %d", src.Cluster, src.DB), nil)
	}
	var dests []DestCluster
	for _, d := range destinationsOf(ru.links, src) {
		if slices.ContainsFunc(dests, func(x DestCluster) bool { return x.Name == d.Cluster }) {
			continue
		}
		versions, err := ru.fleet.syncerVersions(ctx, ru.r.cfg.Certs, d.Cluster)
		if err != nil {
			return SourceInput{}, err
		}
		dc := DestCluster{Name: d.Cluster, Syncer: versions}
		if cs, ok := ru.fleet.Clusters[d.Cluster]; ok {
			dc.Presented = cs.SyncerCert
		}
		dests = append(dests, dc)
	}
	pol, err := ru.sourcePolicy(ctx, src)
	if err != nil {
		return SourceInput{}, err
	}
	managed := ru.managedSet(ctx)
	var clients []string
	if pol.Scope == ScopeAll {
		var err error
		clients, err = ru.r.cfg.Certs.ClientCerts(ctx, src.Cluster, src.DB)
		if errors.Is(err, ErrNoCertificate) {
			clients, err = nil, nil
		}
		if errors.Is(err, ErrInvalidSecret) {
			return SourceInput{}, rejectInvalidSecret("client certificate secret of "+src.String(), err)
		}
		if err != nil {
			return SourceInput{}, fmt.Errorf("read client certificates of %s: %w", src, scrub(err))
		}
	}
	return SourceInput{
		Cluster: src.Cluster, DB: db, Policy: pol, Destinations: dests,
		Managed: managed, ClientCerts: clients, Now: ru.r.cfg.Now(), cache: ru.cache,
		Prunable: ru.prunable(ctx, dests), // pruning hook (prune.go)
	}, nil
}

// sourcePolicy is the run's policy for a source database, or, when the run's policy is only a
// default, the policy stored for that database when an event stated one.
func (ru *run) sourcePolicy(ctx context.Context, src LinkEnd) (Policy, error) {
	pol := ru.pol
	if pol.Stated || ru.r.cfg.Policies == nil {
		return pol, nil
	}
	stored, ok, err := ru.r.cfg.Policies.SourcePolicy(ctx, src.Cluster, src.DB)
	if err != nil {
		return Policy{}, fmt.Errorf("read the stored policy of %s: %w", src, scrub(err))
	}
	if ok {
		if err := stored.Validate(); err != nil {
			return Policy{}, fmt.Errorf("stored policy of %s: %w", src, err)
		}
		pol.Scope, pol.ClientAuth = stored.Scope, stored.ClientAuth
	}
	return pol, nil
}

// managedSet is the fingerprints of every syncer certificate version of every cluster in the
// snapshot, read once per call. Clusters that could not be read, and clusters with a link we could
// not resolve, or whose certificates could not be read, are left out on purpose: they may be destinations we do not know about, so their
// certificates count as unmanaged and are never removed (invariant 1).
func (ru *run) managedSet(ctx context.Context) map[string]bool {
	if ru.managed != nil {
		return ru.managed
	}
	unsure := map[string]bool{}
	for _, l := range ru.links {
		if l.Err != nil {
			unsure[l.Dest.Cluster] = true
		}
	}
	managed := map[string]bool{}
	for _, name := range ru.fleet.names() {
		if unsure[name] {
			continue
		}
		versions, err := ru.fleet.syncerVersions(ctx, ru.r.cfg.Certs, name)
		if err != nil {
			// Unknown versions count as unmanaged: kept, never removed. Safe, and reported.
			ru.r.cfg.Logger.WarnContext(ctx, "syncer certificates unreadable: treated as unmanaged", "cluster", name, "error", redact(err.Error()))
			continue
		}
		for _, v := range versions {
			cs, err := ru.cache.parse(v.Certificate)
			if err != nil {
				continue // not a certificate: it cannot be in a trust list either
			}
			for _, c := range cs {
				managed[c.Fingerprint] = true
			}
		}
	}
	ru.managed = managed
	return managed
}

func (ru *run) destInput(ctx context.Context, l Link) (DestInput, error) {
	db, ok := ru.db(l.Dest)
	if !ok {
		return DestInput{}, reject(CodeUnknownDatabase, fmt.Sprintf("cluster %s has no database %d", l.Dest.Cluster, l.Dest.DB), nil)
	}
	proxy, err := ru.fleet.proxyCurrent(ctx, ru.r.cfg.Certs, l.Source.Cluster)
	if err != nil {
		return DestInput{}, err
	}
	in := DestInput{
		Cluster: l.Dest.Cluster, DB: db, Entry: l.Entry, EntryUID: l.EntryUID,
		SourceCluster: l.Source.Cluster, Proxy: proxy, Now: ru.r.cfg.Now(), cache: ru.cache,
	}
	if cs, ok := ru.fleet.Clusters[l.Source.Cluster]; ok {
		in.Presented = cs.ProxyCert
	}
	// --- proxy rotation hook: AWSPENDING matters only when the source presents something else ---
	if strings.TrimSpace(in.Presented) != "" && existingEntry(ru.cache, in.Presented).key != existingEntry(ru.cache, proxy.Certificate).key {
		pending, ok, err := ru.fleet.pendingProxy(ctx, ru.r.cfg.Certs, l.Source.Cluster)
		if err != nil {
			return DestInput{}, err
		}
		if ok {
			in.ProxyPending = pending
		}
	}
	// --- end proxy rotation hook ---
	return in, nil
}

// db is the DB as last read in this call, else as in the snapshot.
func (ru *run) db(key LinkEnd) (reapi.DB, bool) {
	if db, ok := ru.latest[key]; ok {
		return db, true
	}
	cs, ok := ru.fleet.Clusters[key.Cluster]
	if !ok {
		return reapi.DB{}, false
	}
	return cs.DB(key.DB)
}
