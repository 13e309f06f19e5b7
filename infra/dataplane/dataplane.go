// Package dataplane backs the cluster simulator's databases with real redis-server processes, so that
// tests can prove that a Replica Of link really replicates, over mutually authenticated TLS when it
// should. It implements simulator.DataPlane and simulator.LinkOwner: the simulator tells it every
// database's effective configuration and every cluster's certificates, and it reports each link's real
// state (INFO replication and the replica's log) back as the link's status, lag and last_error.
//
// How the simulated configuration maps onto redis-server (see docs/local-stack.md "Redis with TLS"):
//   - Every database gets its own redis-server with its own folder, a unix socket for the data plane's
//     own control connection, and two loopback endpoints: a plain one and a TLS one.
//   - The plain endpoint is a small proxy in front of the unix socket, as a Redis Enterprise endpoint is
//     a proxy in front of the shards. tls_mode disabled: it forwards everything. replica_ssl: it serves
//     ordinary clients but refuses SYNC and PSYNC, so replication has to use the TLS endpoint (redis's
//     rename-command would not do: it is global, so it would break replication over TLS too).
//     enabled: it stops listening. Like the real system, a mode change applies to new connections only.
//   - The TLS endpoint is redis-server's own tls-port, open unless tls_mode is disabled. Its server
//     certificate is the cluster's proxy certificate; tls-ca-cert-file is the database's trusted list
//     (authentication_ssl_client_certs), rewritten and reloaded at runtime with CONFIG SET;
//     tls-auth-clients follows enforce_client_authentication. Redis does not check hostnames.
//   - A Replica Of entry makes the destination's server REPLICAOF the source's plain endpoint, or its
//     TLS endpoint with tls-replication when encryption is on, presenting the destination cluster's
//     current syncer certificate (or the entry's client_cert) and trusting the entry's server_cert.
//     masterauth is the password of the entry's uri; requirepass is the database's admin password.
//   - Certificate and trust changes reach new connections only, as on the real system. A new syncer
//     certificate restarts the destination's links (the simulator's model of the syncer restarting);
//     DropConnections cuts them with CLIENT KILL.
//
// Limits: a redis-server has one master, so only a database's first replica_sources entry is
// connected (the others report out-of-sync); replication_tls_sni, compression and
// mtls_allow_outdated_certs have no effect; a database that is both a destination and a TLS source
// has one tls-ca-cert-file for both roles, so it also trusts its sources' server certificates as
// client certificates. Like any OpenSSL server, redis-server tells trusted certificates with the same
// subject apart only by their key identifiers (TestSameSubjectTrustAnchors).
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// InstallHint is the command that installs what this package needs on Debian.
const InstallHint = "apt-get install -y redis-server redis-tools"

// ErrNoRedisServer means redis-server is not installed: callers choose to fail or fall back to the
// simulator's rules.
var ErrNoRedisServer = errors.New("redis-server not found (Debian: " + InstallHint + ")")

// Options tune a Plane. The zero value is usable.
type Options struct {
	// RedisServer is the redis-server binary (default: redis-server from PATH).
	RedisServer string
	// Dir is where the plane makes its temporary folder (default os.TempDir()). Each database's
	// folder holds its certificates and keys (mode 0600) and is removed by Close.
	Dir string
	// PollInterval is how often link states are read and reported (default 100ms).
	PollInterval time.Duration
	// Logger gets the plane's own log (never secrets). Default: discard.
	Logger *slog.Logger
}

const defaultPollInterval = 100 * time.Millisecond

// Plane runs one redis-server per simulated database. All methods are safe for concurrent use.
// Always call Close: it stops every process the plane started.
type Plane struct {
	opts   Options
	log    *slog.Logger
	redis  string // absolute path of redis-server
	root   string // the plane's temporary folder
	nobody string // a certificate nobody has the key of: the trust list of a database that trusts none

	mu      sync.Mutex // guards everything below and serializes every change to the servers
	sim     *simulator.Sim
	certs   map[string]simulator.ClusterCerts
	servers map[dbKey]*server
	closed  bool

	stopPoll context.CancelFunc
	polling  sync.WaitGroup
	close    sync.Once
	closeErr error
}

// dbKey names a database: cluster name and uid.
type dbKey struct {
	cluster string
	uid     int
}

func (k dbKey) String() string { return fmt.Sprintf("%s/%d", k.cluster, k.uid) }

// New checks that redis-server is there and makes the plane's folder. Servers start as the simulator
// reports databases; link states are polled until ctx ends or Close.
func New(ctx context.Context, opts Options) (*Plane, error) {
	if opts.RedisServer == "" {
		opts.RedisServer = "redis-server"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = defaultPollInterval
	}
	path, err := exec.LookPath(opts.RedisServer)
	if err != nil {
		return nil, fmt.Errorf("new data plane: %w", ErrNoRedisServer)
	}
	// A placeholder trust anchor: redis refuses an empty tls-ca-cert-file, and an empty trusted list
	// must trust nobody. The key is thrown away.
	kp, err := certs.Generate(certs.Profile{FQDN: "nobody.invalid", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		return nil, fmt.Errorf("new data plane: placeholder certificate: %w", err)
	}
	root, err := os.MkdirTemp(opts.Dir, "replica-tls-dataplane-")
	if err != nil {
		return nil, fmt.Errorf("new data plane: %w", err)
	}
	p := &Plane{
		opts:    opts,
		log:     opts.Logger,
		redis:   path,
		root:    root,
		nobody:  kp.CertPEM,
		certs:   map[string]simulator.ClusterCerts{},
		servers: map[dbKey]*server{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	pollCtx, stop := context.WithCancel(ctx)
	p.stopPoll = stop
	p.polling.Add(1)
	go func() {
		defer p.polling.Done()
		p.poll(pollCtx)
	}()
	return p, nil
}

// OwnLinks is called by the simulator's Start: from then on the plane reports every link's status.
func (p *Plane) OwnLinks(s *simulator.Sim) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sim = s
}

// DBChanged starts the database's server if needed and makes it (and every server whose link depends
// on it) follow the configuration.
func (p *Plane) DBChanged(ctx context.Context, cluster string, cfg simulator.DBConfig) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("data plane is closed")
	}
	k := dbKey{cluster, cfg.UID}
	s := p.servers[k]
	if s == nil {
		var err error
		if s, err = p.startServer(ctx, k); err != nil {
			return fmt.Errorf("db %s: %w", k, err)
		}
		p.servers[k] = s
	}
	s.cfg, s.known = cfg, true
	return p.applyAll(ctx)
}

// CertsChanged installs a cluster's new certificates on its servers: the proxy certificate is served to
// new connections; a new syncer certificate restarts the links whose destination is on the cluster.
func (p *Plane) CertsChanged(ctx context.Context, cluster string, cc simulator.ClusterCerts) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("data plane is closed")
	}
	p.certs[cluster] = cc
	return p.applyAll(ctx)
}

// DropConnections cuts every replication connection whose source or destination is on the cluster;
// the replicas reconnect at once under the configuration of this moment.
func (p *Plane) DropConnections(ctx context.Context, cluster string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("data plane is closed")
	}
	var errs []error
	for _, s := range p.sortedServers() {
		if s.key.cluster != cluster {
			continue
		}
		for _, typ := range []string{"replica", "master"} {
			if err := s.ctl.Do(ctx, "CLIENT", "KILL", "TYPE", typ).Err(); err != nil {
				errs = append(errs, fmt.Errorf("drop %s connections of db %s: %w", typ, s.key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Endpoint is how a client reaches one database's server. Password is the database's admin password:
// secret, handed out only because this is a local fixture.
type Endpoint struct {
	PlainAddr string // 127.0.0.1:port of the plain endpoint (not listening when tls_mode is enabled)
	TLSAddr   string // 127.0.0.1:port of the TLS endpoint (not listening when tls_mode is disabled)
	Password  string
}

// Endpoint returns the endpoints of a database the simulator has reported.
func (p *Plane) Endpoint(cluster string, uid int) (Endpoint, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.servers[dbKey{cluster, uid}]
	if s == nil || !s.known {
		return Endpoint{}, fmt.Errorf("endpoint of db %s/%d: no such database in the data plane", cluster, uid)
	}
	return Endpoint{
		PlainAddr: fmt.Sprintf("127.0.0.1:%d", s.proxy.port),
		TLSAddr:   fmt.Sprintf("127.0.0.1:%d", s.tlsPort),
		Password:  s.cfg.AuthenticationAdminPass,
	}, nil
}

// Dir is the plane's folder: one sub-folder per database ("<cluster>-<uid>") with its redis.log, for a
// failing test to show. Close removes it.
func (p *Plane) Dir() string { return p.root }

// Close stops the poller, every proxy and every redis-server (their whole process groups), and removes
// the plane's folder. It is idempotent.
func (p *Plane) Close() error {
	p.close.Do(func() {
		p.stopPoll()
		p.polling.Wait()
		p.mu.Lock()
		p.closed = true
		servers := p.sortedServers()
		p.mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, len(servers))
		for i, s := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.stop()
			}()
		}
		wg.Wait()
		errs = append(errs, os.RemoveAll(p.root))
		if err := errors.Join(errs...); err != nil {
			p.closeErr = fmt.Errorf("close data plane: %w", err)
		}
	})
	return p.closeErr
}

// sortedServers lists the servers in a fixed order (cluster, uid). Caller holds p.mu.
func (p *Plane) sortedServers() []*server {
	out := make([]*server, 0, len(p.servers))
	for _, s := range p.servers {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *server) int {
		if c := strings.Compare(a.key.cluster, b.key.cluster); c != 0 {
			return c
		}
		return a.key.uid - b.key.uid
	})
	return out
}
