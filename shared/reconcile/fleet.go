package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// loadParallelism bounds how many clusters LoadFleet reads at once.
const loadParallelism = 8

// DBFields are the only database fields the reconciler reads. authentication_admin_pass is
// deliberately absent: it is a secret and nothing here needs it.
func DBFields() []string {
	return []string{
		"uid", "name", "status", "tls_mode", "enforce_client_authentication",
		"authentication_ssl_client_certs", "replica_sources", "endpoints",
	}
}

// ClusterState is one cluster as read at the start of a run.
type ClusterState struct {
	Name       string // registered name
	FQDN       string // the cluster object's name: the suffix of every endpoint it serves
	SyncerCert string // presented syncer certificate (PEM)
	ProxyCert  string // presented proxy certificate (PEM)
	DBs        []reapi.DB
	// ReplicationHosts are hosts outside FQDN that reach this cluster's databases (an ingress or
	// route host, an SNI name), each to one database uid, or 0 for several: from the registration.
	ReplicationHosts map[string]int
}

// ReplicationHoster is what a ClusterAPI may also do: name the hosts outside the cluster's FQDN
// that Replica Of links use to reach it (Kubernetes ingress, OpenShift routes). A registry entry
// says so; the cluster API cannot.
type ReplicationHoster interface {
	ReplicationHosts() map[string]int
}

// DB returns the database with uid.
func (c *ClusterState) DB(uid int) (reapi.DB, bool) {
	for _, db := range c.DBs {
		if db.UID == uid {
			return db, true
		}
	}
	return reapi.DB{}, false
}

// Fleet is a snapshot of the registered clusters taken at the start of a run: two reads per cluster.
// It also caches, for its lifetime, the clients it was loaded with and the certificates read from
// Secrets Manager while reconciling: load a new Fleet for every run.
type Fleet struct {
	Clusters map[string]*ClusterState // by registered name
	Errors   map[string]error         // clusters that could not be read, by registered name

	clients map[string]ClusterAPI

	mu     sync.Mutex
	syncer map[string][]CertVersion
	proxy  map[string]CertVersion

	// --- proxy rotation and pruning hooks ---
	proxyPending map[string]CertVersion // AWSPENDING proxy versions read so far (zero: none)
	registered   *bool                  // whether every registered cluster is in Clusters (see prune.go)
	// --- end hooks ---
}

// LoadFleet reads every named cluster (every registered one when names is empty), a few at a time.
// A cluster that cannot be read is recorded in Errors; the others still load.
func LoadFleet(ctx context.Context, reg Registry, names []string) (*Fleet, error) {
	if len(names) == 0 {
		all, err := reg.ClusterNames(ctx)
		if err != nil {
			return nil, fmt.Errorf("list registered clusters: %w", scrub(err))
		}
		names = all
	}
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)

	type loaded struct {
		state  *ClusterState
		client ClusterAPI
		err    error
	}
	results := make([]loaded, len(names))
	var g errgroup.Group
	g.SetLimit(loadParallelism)
	for i, name := range names {
		g.Go(func() error {
			st, c, err := loadCluster(ctx, reg, name)
			results[i] = loaded{st, c, err}
			return nil // one cluster's failure must not stop the others
		})
	}
	_ = g.Wait()

	f := &Fleet{Clusters: map[string]*ClusterState{}, Errors: map[string]error{}, clients: map[string]ClusterAPI{}}
	for i, name := range names {
		if results[i].err != nil {
			f.Errors[name] = results[i].err
			continue
		}
		f.Clusters[name] = results[i].state
		f.clients[name] = results[i].client
	}
	return f, nil
}

func loadCluster(ctx context.Context, reg Registry, name string) (*ClusterState, ClusterAPI, error) {
	c, err := reg.Client(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("client for cluster %s: %w", name, scrub(err))
	}
	cl, err := c.GetCluster(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read cluster %s: %w", name, scrub(err))
	}
	if cl.Name == "" {
		return nil, nil, fmt.Errorf("read cluster %s: the cluster object has no name (FQDN)", name)
	}
	dbs, err := c.ListDBs(ctx, DBFields()...)
	if err != nil {
		return nil, nil, fmt.Errorf("list databases on %s: %w", name, scrub(err))
	}
	st := &ClusterState{
		Name: name, FQDN: cl.Name,
		SyncerCert: cl.SyncerCertificate, ProxyCert: cl.ProxyCertificate,
		DBs: dbs,
	}
	if h, ok := c.(ReplicationHoster); ok {
		st.ReplicationHosts = h.ReplicationHosts()
	}
	return st, c, nil
}

// LinkEnd names one database of a link.
type LinkEnd struct {
	Cluster string
	DB      int
}

func (e LinkEnd) String() string { return fmt.Sprintf("%s/%d", e.Cluster, e.DB) }

// Link is one Replica Of source entry of a destination DB, resolved to its source DB.
type Link struct {
	Dest     LinkEnd
	Entry    int // index in the destination's replica_sources
	EntryUID int // the entry's uid, 0 when the cluster reports none
	Source   LinkEnd
	Host     string // source endpoint host from the entry's uri; the uri's password is never kept
	Port     int
	Err      error // why the source could not be resolved (a *RejectError for bad input); Source is then empty
}

// Audit is the link as audit events name it.
func (l Link) Audit() *audit.Link {
	return &audit.Link{
		SourceCluster: l.Source.Cluster, SourceDatabase: l.Source.DB,
		DestinationCluster: l.Dest.Cluster, DestinationDB: l.Dest.DB,
	}
}

func (l Link) String() string {
	src := l.Source.String()
	switch {
	case l.Err != nil && l.Host == "":
		src = "(unparseable uri)"
	case l.Err != nil:
		src = net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	}
	return fmt.Sprintf("%s <- %s", l.Dest, src)
}

// Links finds every Replica Of link in the fleet, in cluster name, DB and entry order.
func (f *Fleet) Links() []Link {
	var out []Link
	for _, name := range f.names() {
		for _, db := range f.Clusters[name].DBs {
			for i, rs := range db.ReplicaSources {
				out = append(out, f.resolve(LinkEnd{name, db.UID}, i, rs))
			}
		}
	}
	return out
}

// DestinationsOf lists the destination DBs replicating from a source DB.
func (f *Fleet) DestinationsOf(sourceCluster string, sourceUID int) []LinkEnd {
	return destinationsOf(f.Links(), LinkEnd{sourceCluster, sourceUID})
}

func destinationsOf(links []Link, src LinkEnd) []LinkEnd {
	var out []LinkEnd
	for _, l := range links {
		if l.Err == nil && l.Source == src && !slices.Contains(out, l.Dest) {
			out = append(out, l.Dest)
		}
	}
	return out
}

func (f *Fleet) names() []string {
	names := make([]string, 0, len(f.Clusters))
	for n := range f.Clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (f *Fleet) resolve(dest LinkEnd, entry int, rs reapi.ReplicaSource) Link {
	l := Link{Dest: dest, Entry: entry, EntryUID: rs.UID}
	where := fmt.Sprintf("replica source %d of %s", entry+1, dest)
	host, port, err := endpointOf(rs.URI)
	if err != nil {
		l.Err = reject(CodeUnresolvedSource, where+": "+err.Error(), nil)
		return l
	}
	l.Host, l.Port = host, port
	hp := net.JoinHostPort(host, strconv.Itoa(port))

	// A link through an ingress or route names the ingress host, and the source database in the
	// entry's replication_tls_sni ("set tlsSniName ... to the SNI hostname configured on the
	// ingress", redis.io, Kubernetes > Replica databases; bdb syncer_sources: replication_tls_sni).
	sni := normHost(rs.ReplicationTLSSNI)
	end, src, err := f.byReplicationHost(host, sni)
	if err != nil {
		l.Err = reject(CodeUnresolvedSource, where+": "+err.Error(), nil)
		return l
	}
	if end.DB > 0 {
		l.Source = end
		return l
	}
	ok := src != nil
	if !ok {
		src, ok = f.clusterOf(host)
	}
	if !ok && sni != "" {
		src, ok = f.clusterOf(sni)
	}
	if !ok {
		if uid, name, ok := f.byAddr(host, port); ok {
			l.Source = LinkEnd{name, uid}
			return l
		}
		if len(f.Errors) > 0 {
			// The source may be a cluster that could not be read: a failure worth retrying, not bad input.
			failed := slices.Sorted(maps.Keys(f.Errors))
			errs := make([]error, 0, len(failed))
			for _, n := range failed {
				errs = append(errs, f.Errors[n])
			}
			// Wrapped, so the audit code says why (unreachable, timeout, identity_mismatch).
			l.Err = fmt.Errorf("%s: no cluster read in this run serves %s, and cluster(s) %s could not be read: %w", where, hp, strings.Join(failed, ", "), errors.Join(errs...))
			return l
		}
		l.Err = reject(CodeUnknownCluster, fmt.Sprintf("%s: unknown source cluster: no registered cluster serves %s (not registered)", where, hp), nil)
		return l
	}
	if sni != "" {
		// The SNI names the database when the uri names a shared ingress.
		for _, db := range src.DBs {
			for _, ep := range db.Endpoints {
				if sameHost(ep.DNSName, sni) {
					l.Source = LinkEnd{src.Name, db.UID}
					return l
				}
			}
		}
	}
	var byPort []int
	for _, db := range src.DBs {
		for _, ep := range db.Endpoints {
			if ep.Port != port {
				continue
			}
			if sameHost(ep.DNSName, host) {
				l.Source = LinkEnd{src.Name, db.UID}
				return l
			}
			if !slices.Contains(byPort, db.UID) {
				byPort = append(byPort, db.UID)
			}
		}
	}
	switch len(byPort) {
	case 1:
		// The uri may use another name for the endpoint (a per-node or proxy name): the port is unique
		// per database within a cluster.
		l.Source = LinkEnd{src.Name, byPort[0]}
	case 0:
		l.Err = reject(CodeUnresolvedSource, fmt.Sprintf("%s: cluster %s has no database endpoint on port %d", where, src.Name, port), nil)
	default:
		l.Err = reject(CodeUnresolvedSource, fmt.Sprintf("%s: %d databases of cluster %s listen on port %d", where, len(byPort), src.Name, port), nil)
	}
	return l
}

// clusterOf finds the cluster whose FQDN is host or a suffix of it after a dot; the longest FQDN
// wins when clusters nest.
func (f *Fleet) clusterOf(host string) (*ClusterState, bool) {
	var best *ClusterState
	for _, name := range f.names() {
		c := f.Clusters[name]
		fqdn := normHost(c.FQDN)
		h := normHost(host)
		if fqdn == "" || (h != fqdn && !strings.HasSuffix(h, "."+fqdn)) {
			continue
		}
		if best == nil || len(fqdn) > len(normHost(best.FQDN)) {
			best = c
		}
	}
	return best, best != nil
}

// byReplicationHost resolves a link through the registrations' replication hosts: the SNI first
// (it names the database behind a shared ingress), then the uri's host. It returns the database when
// the registration maps the host to one, or else the cluster when it maps the host to several (the
// caller tells them apart by SNI or port), or neither. A host two registrations claim is an error:
// neither is trusted.
func (f *Fleet) byReplicationHost(host, sni string) (LinkEnd, *ClusterState, error) {
	for _, h := range []string{sni, normHost(host)} {
		if h == "" {
			continue
		}
		var found []LinkEnd
		for _, name := range f.names() {
			if uid, ok := f.Clusters[name].ReplicationHosts[h]; ok {
				found = append(found, LinkEnd{name, uid})
			}
		}
		switch {
		case len(found) > 1:
			return LinkEnd{}, nil, fmt.Errorf("host %s is a replication host of several registered clusters (%s, %s): none is trusted", h, found[0].Cluster, found[1].Cluster)
		case len(found) == 1 && found[0].DB > 0:
			if _, ok := f.Clusters[found[0].Cluster].DB(found[0].DB); !ok {
				return LinkEnd{}, nil, fmt.Errorf("host %s is mapped to database %d of %s, which does not exist", h, found[0].DB, found[0].Cluster)
			}
			return found[0], nil, nil
		case len(found) == 1:
			return LinkEnd{}, f.Clusters[found[0].Cluster], nil
		}
	}
	return LinkEnd{}, nil, nil
}

// byAddr matches a uri that names an endpoint by IP address.
func (f *Fleet) byAddr(host string, port int) (uid int, cluster string, ok bool) {
	if net.ParseIP(host) == nil {
		return 0, "", false
	}
	for _, name := range f.names() {
		for _, db := range f.Clusters[name].DBs {
			for _, ep := range db.Endpoints {
				if ep.Port == port && slices.Contains(ep.Addr, host) {
					return db.UID, name, true
				}
			}
		}
	}
	return 0, "", false
}

func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

func sameHost(a, b string) bool { return a != "" && normHost(a) == normHost(b) }

// endpointOf extracts host and port from a Replica Of uri (redis://user:password@host:port). It is
// parsed by hand because url.Parse fails on passwords holding reserved characters, and its errors
// quote the whole uri, password included. Errors here never quote the uri.
func endpointOf(uri string) (string, int, error) {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "", 0, errors.New("uri has no scheme (want redis://...)")
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	if cut := strings.IndexAny(rest, "/?#"); cut >= 0 {
		rest = rest[:cut]
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return "", 0, errors.New("uri does not end in host:port")
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, errors.New("uri port is not a number between 1 and 65535")
	}
	return host, port, nil
}

// client returns the cluster's API client: the one the fleet was loaded with, else a new one.
func (f *Fleet) client(ctx context.Context, reg Registry, name string) (ClusterAPI, error) {
	if c, ok := f.clients[name]; ok {
		return c, nil
	}
	if reg == nil {
		return nil, fmt.Errorf("client for cluster %s: no registry", name)
	}
	c, err := reg.Client(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("client for cluster %s: %w", name, scrub(err))
	}
	return c, nil
}

// syncerVersions reads (once per fleet) a cluster's syncer certificate versions. A missing secret is
// no versions.
func (f *Fleet) syncerVersions(ctx context.Context, src CertSource, name string) ([]CertVersion, error) {
	f.mu.Lock()
	v, ok := f.syncer[name]
	f.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := src.SyncerVersions(ctx, name)
	if errors.Is(err, ErrNoCertificate) {
		v, err = nil, nil
	}
	if errors.Is(err, ErrInvalidSecret) {
		return nil, rejectInvalidSecret("syncer certificate secret of "+name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read syncer certificates of %s: %w", name, scrub(err))
	}
	f.mu.Lock()
	if f.syncer == nil {
		f.syncer = map[string][]CertVersion{}
	}
	f.syncer[name] = v
	f.mu.Unlock()
	return v, nil
}

// --- proxy rotation hook ---

// pendingProxy reads (once per fleet) the AWSPENDING version of a cluster's proxy secret, when src
// can tell (ProxyPendingSource). ok is false when there is none, or src cannot say.
func (f *Fleet) pendingProxy(ctx context.Context, src CertSource, name string) (v CertVersion, ok bool, err error) {
	ps, can := src.(ProxyPendingSource)
	if !can {
		return CertVersion{}, false, nil
	}
	f.mu.Lock()
	v, cached := f.proxyPending[name]
	f.mu.Unlock()
	if !cached {
		v, err = ps.ProxyPending(ctx, name)
		// A pending version that is missing or unreadable cannot be what the cluster presents.
		if errors.Is(err, ErrNoCertificate) || errors.Is(err, ErrInvalidSecret) {
			v, err = CertVersion{}, nil
		}
		if err != nil {
			return CertVersion{}, false, fmt.Errorf("read pending proxy certificate of %s: %w", name, scrub(err))
		}
		f.mu.Lock()
		if f.proxyPending == nil {
			f.proxyPending = map[string]CertVersion{}
		}
		f.proxyPending[name] = v
		f.mu.Unlock()
	}
	return v, v.Certificate != "", nil
}

// --- end proxy rotation hook ---

// proxyCurrent reads (once per fleet) a cluster's current proxy certificate.
func (f *Fleet) proxyCurrent(ctx context.Context, src CertSource, name string) (CertVersion, error) {
	f.mu.Lock()
	v, ok := f.proxy[name]
	f.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := src.ProxyCurrent(ctx, name)
	if errors.Is(err, ErrNoCertificate) {
		return CertVersion{}, reject(CodeNoCertificate, "no proxy certificate of cluster "+name+" in Secrets Manager", err)
	}
	if errors.Is(err, ErrInvalidSecret) {
		return CertVersion{}, rejectInvalidSecret("proxy certificate secret of "+name, err)
	}
	if err != nil {
		return CertVersion{}, fmt.Errorf("read proxy certificate of %s: %w", name, scrub(err))
	}
	f.mu.Lock()
	if f.proxy == nil {
		f.proxy = map[string]CertVersion{}
	}
	f.proxy[name] = v
	f.mu.Unlock()
	return v, nil
}
