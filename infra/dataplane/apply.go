package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// applied is a server's runtime configuration, as the data plane set it. Empty PEMs mean not set.
type applied struct {
	plain       plainMode
	tlsOn       bool
	serverCert  string // the cluster's proxy certificate and key
	serverKey   string
	clientCert  string // what the server presents as a replica
	clientKey   string
	bundle      string // tls-ca-cert-file: trusted clients + the server_cert of its source
	authClients bool
	requirePass string
	masterAuth  string
	tlsRepl     bool
	masterPort  int // 0: not a replica
	// What the current replication connection was made with: a change restarts the link.
	link           simulator.ReplicaSourceConfig
	linkClientCert string
	linkMasterAuth string
}

// linkState is one replica_sources entry as the data plane connected it.
type linkState struct {
	entry  simulator.ReplicaSourceConfig
	static string // an error that no connection attempt can change (unresolvable, unsupported)
	active bool   // the server replicates this entry
}

// applyAll brings every server in line with the latest configurations and certificates. Level
// triggered: each server gets only what differs from what it runs. Caller holds p.mu.
func (p *Plane) applyAll(ctx context.Context) error {
	var errs []error
	for _, s := range p.sortedServers() {
		if !s.known {
			continue
		}
		if err := p.apply(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("db %s: %w", s.key, err))
		}
	}
	return errors.Join(errs...)
}

// desired computes what s should run, and the state of each of its links.
func (p *Plane) desired(s *server) (applied, []*linkState) {
	cfg := s.cfg
	var want applied
	switch cfg.TLSMode {
	case "enabled":
		want.plain, want.tlsOn = plainClosed, true
	case "replica_ssl":
		want.plain, want.tlsOn = plainFiltered, true
	default:
		want.plain = plainOpen
	}
	cc, haveCerts := p.certs[s.key.cluster]
	if !haveCerts {
		want.tlsOn = false // no certificate to serve yet: the next CertsChanged opens it
	}
	want.serverCert, want.serverKey = cc.ProxyCert, cc.ProxyKey
	want.authClients = cfg.EnforceClientAuthentication == "enabled"
	want.requirePass = cfg.AuthenticationAdminPass
	trusted := validPEMs(cfg.AuthenticationSSLClientCerts)

	links := make([]*linkState, 0, len(cfg.ReplicaSources))
	for i, e := range cfg.ReplicaSources {
		l := &linkState{entry: e}
		links = append(links, l)
		if i > 0 {
			l.static = "data plane: a redis-server replicates from one source; only the first replica source is connected"
			continue
		}
		src, reason := p.sourceOf(e.URI)
		if src == nil {
			l.static = reason
			continue
		}
		want.masterAuth = passwordOf(e.URI)
		if e.Encryption {
			if !haveCerts && e.ClientCert == "" {
				l.static = "data plane: the destination cluster's syncer certificate is not known yet"
				continue
			}
			want.tlsRepl, want.masterPort = true, src.tlsPort
			want.clientCert, want.clientKey = cc.SyncerCert, cc.SyncerKey
			if e.ClientCert != "" {
				want.clientCert, want.clientKey = e.ClientCert, e.ClientKey
			}
			trusted = append(trusted, validPEMs([]string{e.ServerCert})...)
		} else {
			want.masterPort = src.proxy.port
		}
		want.link, l.active = e, true
	}
	if len(trusted) == 0 {
		trusted = []string{p.nobody}
	}
	want.bundle = strings.Join(trusted, "\n")
	if want.clientCert == "" {
		// Redis wants a client certificate whenever TLS is configured; the server's own will do.
		want.clientCert, want.clientKey = want.serverCert, want.serverKey
	}
	return want, links
}

// sourceOf resolves a Replica Of uri to the source's server, or says why it cannot.
func (p *Plane) sourceOf(uri string) (*server, string) {
	if p.sim == nil {
		return nil, "data plane: not attached to a simulator"
	}
	cluster, uid, ok := p.sim.SourceOf(uri)
	if !ok {
		return nil, "failed to connect to source: name or service not known"
	}
	src := p.servers[dbKey{cluster, uid}]
	if src == nil || !src.known {
		return nil, "data plane: the source database has not started yet"
	}
	return src, ""
}

// apply makes s run what desired says, changing only what differs. Certificate, trust and listener
// changes reach new connections only; the replication link is restarted when what it connects with
// changed, as the real syncer does.
func (p *Plane) apply(ctx context.Context, s *server) error {
	want, links := p.desired(s)
	have := s.applied
	s.links = links

	// TLS material first: a listener or a link must never start with stale certificates.
	var params []string
	var newFiles, oldFiles []string
	tlsMaterial := want.serverCert != "" && (want.serverCert != have.serverCert || want.serverKey != have.serverKey ||
		want.clientCert != have.clientCert || want.clientKey != have.clientKey || want.bundle != have.bundle)
	if tlsMaterial {
		s.gen++
		files := map[string]string{
			"tls-cert-file":        want.serverCert,
			"tls-key-file":         want.serverKey,
			"tls-client-cert-file": want.clientCert,
			"tls-client-key-file":  want.clientKey,
			"tls-ca-cert-file":     want.bundle,
		}
		for _, name := range []string{"tls-cert-file", "tls-key-file", "tls-client-cert-file", "tls-client-key-file", "tls-ca-cert-file"} {
			path := filepath.Join(s.dir, fmt.Sprintf("%s-%d.pem", strings.TrimSuffix(name, "-file"), s.gen))
			if err := os.WriteFile(path, []byte(files[name]), 0o600); err != nil {
				removeAll(newFiles)
				return fmt.Errorf("write %s: %w", name, err)
			}
			newFiles = append(newFiles, path)
			params = append(params, name, path)
		}
	}
	if want.authClients != have.authClients {
		params = append(params, "tls-auth-clients", yesNo(want.authClients))
	}
	if want.tlsRepl != have.tlsRepl {
		params = append(params, "tls-replication", yesNo(want.tlsRepl))
	}
	if len(params) > 0 {
		if err := s.ctl.Do(ctx, toAny(append([]string{"CONFIG", "SET"}, params...))...).Err(); err != nil {
			removeAll(newFiles)
			return fmt.Errorf("configure TLS: %w", err)
		}
		if tlsMaterial {
			oldFiles, s.files = s.files, newFiles
			have.serverCert, have.serverKey, have.clientCert, have.clientKey, have.bundle =
				want.serverCert, want.serverKey, want.clientCert, want.clientKey, want.bundle
		}
		have.authClients, have.tlsRepl = want.authClients, want.tlsRepl
		s.applied = have
		removeAll(oldFiles) // they hold keys
	}
	// Secrets go alone, and redis's answer is not quoted, in case it echoes the value.
	if want.requirePass != have.requirePass {
		if err := s.ctl.ConfigSet(ctx, "requirepass", want.requirePass).Err(); err != nil {
			return fmt.Errorf("set the admin password: %w", errRefused)
		}
		have.requirePass = want.requirePass
		s.applied = have
	}
	if want.masterAuth != have.masterAuth {
		if err := s.ctl.ConfigSet(ctx, "masterauth", want.masterAuth).Err(); err != nil {
			return fmt.Errorf("set the source password: %w", errRefused)
		}
		have.masterAuth = want.masterAuth
		s.applied = have
	}

	// Listeners.
	if want.tlsOn != have.tlsOn {
		if err := s.setTLSPort(ctx, want.tlsOn); err != nil {
			return err
		}
		have.tlsOn = want.tlsOn
		s.applied = have
	}
	if want.plain != have.plain {
		if err := s.proxy.setMode(want.plain); err != nil {
			return err
		}
		have.plain = want.plain
		s.applied = have
	}

	// The link.
	switch {
	case want.masterPort != have.masterPort && want.masterPort == 0:
		if err := s.ctl.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
			return fmt.Errorf("stop replicating: %w", err)
		}
		s.logTail.reset(s.logPath)
	case want.masterPort != have.masterPort:
		if err := s.ctl.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(want.masterPort)).Err(); err != nil {
			return fmt.Errorf("replicate from port %d: %w", want.masterPort, err)
		}
		s.logTail.reset(s.logPath)
		s.downSince = time.Now()
	case want.masterPort != 0 && (restartNeeded(have.link, want.link) || linkCert(want) != have.linkClientCert ||
		want.masterAuth != have.linkMasterAuth):
		// Same endpoint, new credentials or trust: the syncer reconnects with them.
		if err := s.ctl.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
			return fmt.Errorf("restart the link: %w", err)
		}
		s.logTail.reset(s.logPath)
		s.downSince = time.Now()
	}
	have.masterPort, have.link = want.masterPort, want.link
	have.linkClientCert, have.linkMasterAuth = linkCert(want), want.masterAuth
	s.applied = have
	return nil
}

// linkCert is the certificate the replication connection presents: none over plain text.
func linkCert(a applied) string {
	if !a.tlsRepl {
		return ""
	}
	return a.clientCert
}

// restartNeeded reports whether the syncer reconnects when its entry changes from a to b: only what
// the connection is made of counts.
func restartNeeded(a, b simulator.ReplicaSourceConfig) bool {
	return a.URI != b.URI || a.Encryption != b.Encryption || a.ServerCert != b.ServerCert ||
		a.ClientCert != b.ClientCert || a.ClientKey != b.ClientKey || a.ReplicationTLSSNI != b.ReplicationTLSSNI
}

// setTLSPort opens or closes the TLS endpoint. Opening retries on another port if the chosen one was
// taken meanwhile by another process.
func (s *server) setTLSPort(ctx context.Context, on bool) error {
	if !on {
		if err := s.ctl.ConfigSet(ctx, "tls-port", "0").Err(); err != nil {
			return fmt.Errorf("close the TLS endpoint: %w", err)
		}
		return nil
	}
	var err error
	for range 3 {
		if err = s.ctl.ConfigSet(ctx, "tls-port", strconv.Itoa(s.tlsPort)).Err(); err == nil {
			return nil
		}
		port, perr := freePort()
		if perr != nil {
			return perr
		}
		s.tlsPort = port
	}
	return fmt.Errorf("open the TLS endpoint: %w", err)
}

// validPEMs keeps the entries that parse as certificates: a garbage entry planted by a test must not
// break the whole trust list (redis would refuse the file).
func validPEMs(list []string) []string {
	out := make([]string, 0, len(list))
	for _, p := range list {
		if _, err := certs.Parse(p); err == nil {
			out = append(out, strings.TrimSpace(p)+"\n")
		}
	}
	return out
}

// passwordOf is the password in a Replica Of uri (secret).
func passwordOf(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func removeAll(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
	}
}
