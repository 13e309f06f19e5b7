// Package simulator is a stand-in for the REST API of several Redis Enterprise clusters, over real HTTPS
// with a self-signed API certificate per cluster, for integration and end-to-end tests and the demo.
//
// It follows docs/redis-enterprise-api.md, read independently of the project's API client: databases
// (GET/PUT /v1/bdbs, dry_run, fields), asynchronous actions, cluster certificates, and Replica Of links
// whose status follows the TLS rules of the real system (the destination's syncer must present a
// certificate the source trusts and trust the source's proxy certificate; source-side changes only
// affect new connections). Faults (latency, error rates, failed or dropped calls, empty or padded
// answers, partially applied certificate updates, failed actions, a dead API) and per-route call
// counters are there for testing clients. With a LinkOwner data plane (infra/dataplane: a real
// redis-server per database) link status comes from real replication instead of the rules.
//
// Choices where the documentation is silent (unverified against a live cluster):
//   - Error bodies carry error_code and description (Options.ErrorMessageField switches to message).
//   - A PUT body may only hold the fields the simulator supports (tls_mode, enforce_client_authentication,
//     authentication_ssl_client_certs, authentication_ssl_crdt_certs, mtls_allow_outdated_certs,
//     replica_sources): anything else is 400 invalid_schema, so a client that sends back a whole DB is
//     caught. In replica_sources entries, read-only keys (status, lag, ...) are ignored.
//   - Validation comes before the busy check: an invalid body gets 400/406 even while a change runs; a
//     valid one, dry_run included, gets 409 busy while the database is active-change-pending.
//   - Enum errors are 400 invalid_schema; an expired certificate is 406 certificate_expired.
//   - encryption: true needs a server_cert; client_cert needs a matching client_key.
//   - A replica_sources uid that does not exist on the database is 400.
//   - A certificate update answered 409 ("not all nodes have been updated") has installed the
//     certificate: partially applied, not rolled back (PartialCertUpdates).
//   - A failed action leaves its change unapplied (FailNextActions).
//   - GET /v1/bdbs renders each database as it is written, not one snapshot of all of them.
package simulator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// Options tune a simulator. The zero value is usable.
type Options struct {
	// ActionDuration is how long a PUT's action runs before it completes (default 50ms). Negative: actions
	// run until ClusterHandle.CompleteActions, for tests that must see the pending state without racing.
	ActionDuration time.Duration
	// SyncDelay is how long a (re)connected link shows "syncing" before "in-sync" (default 0).
	SyncDelay time.Duration
	// Now is the clock for certificate validity and generation (default time.Now). Durations (actions,
	// SyncDelay, lag) use the wall clock, so a test can move Now without stalling them.
	Now func() time.Time
	// KeyType of generated certificates (default ECDSA P-256, fast; certs.RSA2048 like a real cluster).
	KeyType certs.KeyType
	// ReconnectOnRead is the strict mode: every read re-checks every link as if it reconnected, so a
	// window in which a new connection would fail shows up as out-of-sync. For rotation tests.
	ReconnectOnRead bool
	// Logger gets request and event logs (never secrets). Default: discard.
	Logger *slog.Logger
	// Seed makes the fault error rates deterministic (default 1).
	Seed uint64
	// ErrorMessageField is the key of the error text in error bodies: "description" (default) or
	// "message" (the docs disagree; clients must read both).
	ErrorMessageField string
	// DataPlane follows changes (default NoDataPlane).
	DataPlane DataPlane
}

const defaultActionDuration = 50 * time.Millisecond

// Sim is a set of simulated clusters. All methods are safe for concurrent use.
type Sim struct {
	opts     Options
	log      *slog.Logger
	dp       DataPlane
	dpq      *dpQueue
	dpLinks  bool       // the data plane is a LinkOwner: it reports every link's status
	clusters []*cluster // topology order

	mu        sync.Mutex // guards all cluster and database state
	byName    map[string]*cluster
	actionSeq uint64
	dpSeq     uint64 // data plane calls queued so far
	dpDone    uint64 // the last data plane call that returned
	started   bool
	closed    bool

	servers   []*http.Server
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New validates the topology and builds the clusters, their certificates and databases. Links start
// as they would on a running cluster: connected when the rules allow it.
func New(topo Topology, opts Options) (*Sim, error) {
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	if opts.ActionDuration == 0 {
		opts.ActionDuration = defaultActionDuration
	}
	if opts.SyncDelay < 0 {
		return nil, errors.New("new simulator: SyncDelay must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyType == "" {
		opts.KeyType = certs.ECDSAP256
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	switch opts.ErrorMessageField {
	case "":
		opts.ErrorMessageField = "description"
	case "description", "message":
	default:
		return nil, fmt.Errorf("new simulator: ErrorMessageField %q: want description or message", opts.ErrorMessageField)
	}
	s := &Sim{
		opts:   opts,
		log:    opts.Logger,
		dp:     opts.DataPlane,
		dpq:    newDPQueue(),
		byName: map[string]*cluster{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.dp == nil {
		s.dp = NoDataPlane{}
	}
	_, s.dpLinks = s.dp.(LinkOwner)
	now := time.Now()
	for _, spec := range topo.Clusters {
		c, err := s.newCluster(spec, now)
		if err != nil {
			return nil, err
		}
		s.clusters = append(s.clusters, c)
		s.byName[spec.Name] = c
	}
	// Replica Of entries point at source endpoints, so they are built once every DB exists.
	for _, c := range s.clusters {
		for _, spec := range c.spec.Databases {
			d := c.dbs[spec.UID]
			for _, r := range spec.ReplicaOf {
				src := s.byName[r.Cluster].dbs[r.DB]
				d.cfg.ReplicaSources = append(d.cfg.ReplicaSources, ReplicaSourceConfig{
					UID: d.nextSourceUID,
					URI: sourceURI(src),
				})
				d.nextSourceUID++
			}
			d.eff = d.cfg.clone()
		}
	}
	for _, c := range s.clusters {
		for _, d := range c.sortedDBs() {
			for _, r := range d.eff.ReplicaSources {
				l := &link{cfg: r, since: now, lastUpdate: now}
				d.links[r.UID] = l
				s.reconnect(c, l, now)
			}
		}
	}
	return s, nil
}

// sourceURI is the Replica Of URI of a source database: redis://admin:<admin pass>@<endpoint>:<port>.
func sourceURI(src *db) string {
	u := url.URL{
		Scheme: "redis",
		User:   url.UserPassword("admin", src.cfg.AuthenticationAdminPass),
		Host:   net.JoinHostPort(src.dnsName, strconv.Itoa(src.cfg.Port)),
	}
	return u.String()
}

func (s *Sim) newCluster(spec ClusterSpec, now time.Time) (*cluster, error) {
	c := &cluster{
		spec:          spec,
		users:         map[string]UserSpec{},
		dbs:           map[int]*db{},
		actions:       map[string]*action{},
		legacyCertAPI: spec.LegacyCertAPI,
		faults:        newFaults(s.opts.Seed, spec.Name),
	}
	for _, u := range spec.Users {
		c.users[u.Username] = u
		if u.Role == RoleAdmin && c.admin.Username == "" {
			c.admin = u
		}
		if u.Role != RoleAdmin && c.viewer.Username == "" {
			c.viewer = u
		}
	}
	var err error
	// The API certificate is checked by real TLS clients against the wall clock, not Options.Now.
	if c.api, err = s.generate(spec.FQDN, certs.KindProxy, now, true); err != nil {
		return nil, fmt.Errorf("cluster %s: API certificate: %w", spec.Name, err)
	}
	if err := c.setAPICert(c.api); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", spec.Name, err)
	}
	if c.syncer, err = s.generate(spec.FQDN, certs.KindSyncer, s.opts.Now(), false); err != nil {
		return nil, fmt.Errorf("cluster %s: syncer certificate: %w", spec.Name, err)
	}
	if c.proxy, err = s.generate(spec.FQDN, certs.KindProxy, s.opts.Now(), false); err != nil {
		return nil, fmt.Errorf("cluster %s: proxy certificate: %w", spec.Name, err)
	}
	for _, ds := range spec.Databases {
		pass := ds.AuthenticationAdminPass
		if pass == "" {
			if pass, err = randomHex(16); err != nil {
				return nil, fmt.Errorf("cluster %s db %d: admin password: %w", spec.Name, ds.UID, err)
			}
		}
		d := &db{
			cfg: DBConfig{
				UID:                         ds.UID,
				Name:                        ds.Name,
				Port:                        ds.Port,
				TLSMode:                     orDefault(ds.TLSMode, "disabled"),
				EnforceClientAuthentication: orDefault(ds.EnforceClientAuthentication, "disabled"),
				AuthenticationAdminPass:     pass,
			},
			dnsName:       fmt.Sprintf("redis-%d.%s", ds.Port, spec.FQDN),
			created:       now,
			lastChanged:   now,
			links:         map[int]*link{},
			nextSourceUID: 1,
		}
		d.eff = d.cfg.clone()
		c.dbs[ds.UID] = d
	}
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// generate issues a certificate with the profile of the real ones; the API certificate also names
// 127.0.0.1 because Go clients check the address they dial.
func (s *Sim) generate(fqdn string, kind certs.Kind, notBefore time.Time, api bool) (keyPair, error) {
	p := certs.Profile{FQDN: fqdn, Kind: kind, NotBefore: notBefore, KeyType: s.opts.KeyType}
	if api {
		p.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	kp, err := certs.Generate(p)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{certPEM: kp.CertPEM, keyPEM: kp.KeyPEM, leaf: kp.Cert.X509, fp: fingerprint(kp.Cert.X509)}, nil
}

// setAPICert makes the listener serve kp from the next handshake on.
func (c *cluster) setAPICert(kp keyPair) error {
	tc, err := tls.X509KeyPair([]byte(kp.certPEM), []byte(kp.keyPEM))
	if err != nil {
		return fmt.Errorf("load API certificate: %w", err)
	}
	c.apiTLS.Store(&tc)
	c.api = kp
	return nil
}

// Start opens one HTTPS listener per cluster on 127.0.0.1:0 and serves until Close or ctx ends.
func (s *Sim) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("start simulator: already started or closed")
	}
	s.started = true
	s.mu.Unlock()

	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	var lc net.ListenConfig
	for _, c := range s.clusters {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			_ = s.Close()
			return fmt.Errorf("start cluster %s: listen: %w", c.spec.Name, err)
		}
		protocols := new(http.Protocols)
		protocols.SetHTTP1(true) // HTTP/1.1 only: DropNext needs to hijack the connection
		srv := &http.Server{
			Handler:           s.handler(c),
			ReadHeaderTimeout: 10 * time.Second,
			Protocols:         protocols,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return runCtx },
			TLSConfig: &tls.Config{
				MinVersion: tls.VersionTLS12,
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
					return c.apiTLS.Load(), nil
				},
			},
		}
		s.mu.Lock()
		c.url = "https://" + ln.Addr().String()
		s.servers = append(s.servers, srv)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ServeTLS(gateListener{Listener: ln, down: &c.unreachable}, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("cluster API server stopped", "cluster", c.spec.Name, "err", err)
			}
		}()
		s.log.Info("cluster API listening", "cluster", c.spec.Name, "fqdn", c.spec.FQDN, "url", c.url)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.dpq.run(runCtx)
	}()
	// Close when the caller's context ends, too.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			go func() { _ = s.Close() }()
		case <-runCtx.Done():
		}
	}()
	if o, ok := s.dp.(LinkOwner); ok {
		o.OwnLinks(s) // before the first notification, without the lock: it may call back
	}
	s.mu.Lock()
	for _, c := range s.clusters {
		s.notifyCerts(c)
		for _, d := range c.sortedDBs() {
			s.notifyDB(c, d)
		}
	}
	s.mu.Unlock()
	return nil
}

// gateListener closes every connection it accepts while down is set (ClusterHandle.SetUnreachable).
type gateListener struct {
	net.Listener
	down *atomic.Bool
}

func (l gateListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil || !l.down.Load() {
			return conn, err
		}
		_ = conn.Close()
	}
}

// Close stops every listener, running action and the data plane worker. It is idempotent; concurrent
// callers all return once everything has stopped.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Sim) close() error {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.clusters {
		for _, a := range c.actions {
			if a.timer != nil {
				a.timer.Stop()
			}
		}
	}
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close simulator: %w", err)
	}
	return nil
}

// ClusterInfo is what a client needs to reach one cluster's API. Passwords included: a local fixture.
type ClusterInfo struct {
	Name           string // registry name
	FQDN           string
	URL            string // https://127.0.0.1:<port>, empty before Start
	APICertPEM     string // the self-signed API certificate to pin
	AdminUser      string
	AdminPassword  string
	ViewerUser     string // empty when the topology has no read-only user
	ViewerPassword string
}

// Clusters describes every cluster, in topology order.
func (s *Sim) Clusters() []ClusterInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ClusterInfo, 0, len(s.clusters))
	for _, c := range s.clusters {
		out = append(out, c.info())
	}
	return out
}

func (c *cluster) info() ClusterInfo {
	return ClusterInfo{
		Name:           c.spec.Name,
		FQDN:           c.spec.FQDN,
		URL:            c.url,
		APICertPEM:     c.api.certPEM,
		AdminUser:      c.admin.Username,
		AdminPassword:  c.admin.Password,
		ViewerUser:     c.viewer.Username,
		ViewerPassword: c.viewer.Password,
	}
}

// Cluster returns a handle on the named cluster, or nil if there is none. Its ClusterInfo is a snapshot.
func (s *Sim) Cluster(name string) *ClusterHandle {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byName[name]
	if c == nil {
		return nil
	}
	return &ClusterHandle{ClusterInfo: c.info(), s: s, c: c}
}

// ReportLink records the real status of a link, as a data plane observed it; from then on that link
// shows the report instead of the simulated rules, until it is restarted or removed. With a LinkOwner,
// a link is also (re)connected by DropConnections and a new syncer certificate: a report is dropped
// (nil error) until the data plane call that carries the latest such change has returned, so a report
// from before the change never shows as the link's state after it.
func (s *Sim) ReportLink(cluster string, dbUID, sourceUID int, r LinkReport) error {
	switch r.Status {
	case "in-sync", "syncing", "out-of-sync":
	default:
		return fmt.Errorf("report link: status %q: want in-sync, syncing or out-of-sync", r.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byName[cluster]
	if c == nil {
		return fmt.Errorf("report link: no cluster %q", cluster)
	}
	d := c.dbs[dbUID]
	if d == nil {
		return fmt.Errorf("report link: no db %d on %s", dbUID, cluster)
	}
	l := d.links[sourceUID]
	if l == nil {
		return fmt.Errorf("report link: no replica source %d on db %d on %s", sourceUID, dbUID, cluster)
	}
	if s.dpLinks && (l.stale || l.after > s.dpDone) {
		return nil // the data plane has not applied the latest change to this link yet
	}
	if l.reported == nil || *l.reported != r {
		l.lastUpdate = time.Now()
	}
	l.reported = &r
	return nil
}

// SourceOf names the database a Replica Of URI points at, resolved as a destination's syncer would:
// the host must be a simulated endpoint's dns_name and the port its port.
func (s *Sim) SourceOf(uri string) (cluster string, dbUID int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, d, _, ok := s.resolveSource(uri)
	if !ok {
		return "", 0, false
	}
	return c.spec.Name, d.cfg.UID, true
}

// notifyDB queues the database's effective configuration for the data plane. Caller holds s.mu.
func (s *Sim) notifyDB(c *cluster, d *db) {
	if !s.started {
		return
	}
	name, cfg := c.spec.Name, d.eff.clone()
	s.pushDP(func(ctx context.Context) {
		if err := s.dp.DBChanged(ctx, name, cfg); err != nil {
			s.log.Warn("data plane: apply database", "cluster", name, "db", cfg.UID, "err", err)
		}
	})
}

// notifyCerts queues the cluster's certificates for the data plane. Caller holds s.mu.
func (s *Sim) notifyCerts(c *cluster) {
	if !s.started {
		return
	}
	name := c.spec.Name
	cc := ClusterCerts{SyncerCert: c.syncer.certPEM, SyncerKey: c.syncer.keyPEM, ProxyCert: c.proxy.certPEM, ProxyKey: c.proxy.keyPEM}
	s.pushDP(func(ctx context.Context) {
		if err := s.dp.CertsChanged(ctx, name, cc); err != nil {
			s.log.Warn("data plane: apply certificates", "cluster", name, "err", err)
		}
	})
}

// pushDP queues a data plane call. Links (re)connected since the last call wait for this one: their
// reports count again once it has returned. Caller holds s.mu.
func (s *Sim) pushDP(job func(context.Context)) {
	s.dpSeq++
	seq := s.dpSeq
	if s.dpLinks {
		for _, c := range s.clusters {
			for _, d := range c.dbs {
				for _, l := range d.links {
					if l.stale {
						l.stale, l.after = false, seq
					}
				}
			}
		}
	}
	s.dpq.push(func(ctx context.Context) {
		job(ctx)
		s.mu.Lock()
		s.dpDone = seq
		s.mu.Unlock()
	})
}
