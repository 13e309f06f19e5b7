package simulator

import (
	"crypto/x509"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Replica Of link rules. A destination cluster's syncer (re)connects a link when the link is created or
// its uri/encryption/server_cert/client_cert changes (once the action completes), when the destination's
// syncer certificate changes, on DropConnections, and, while the link is down, whenever its status is
// read. An attempt succeeds iff what the destination presents and trusts matches what the source
// requires at that moment. An established connection survives source-side changes (trust list,
// tls_mode, proxy certificate): those apply to new connections only, as the documentation says.
// All functions here run with s.mu held.

// Link error texts, worded like the real syncer's.
const (
	errResolve       = "failed to connect to source: name or service not known"
	errAuth          = "source authentication failed: invalid username-password pair"
	errTLSToPlain    = "SSL handshake failed: wrong version number (source does not use TLS)"
	errNeedsTLS      = "source requires TLS: connection closed by peer"
	errVerify        = "SSL handshake failed: certificate verify failed"
	errVerifyExpired = "SSL handshake failed: certificate verify failed (certificate has expired or is not yet valid)"
	errUnknownCA     = "SSL handshake failed: tlsv1 alert unknown ca"
	errClientExpired = "SSL handshake failed: sslv3 alert certificate expired"
	errClientEarly   = "SSL handshake failed: certificate is not yet valid"
	errNoClientCert  = "SSL handshake failed: no client certificate to present"
)

// resolveSource finds the database a Replica Of URI points at: the host must be the dns_name of some
// simulated endpoint and the port its port, or a route or ingress with the entry's SNI (routes.go).
func (s *Sim) resolveSource(uri string, sni ...string) (*cluster, *db, string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "redis" {
		return nil, nil, "", false
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, nil, "", false
	}
	pass, _ := u.User.Password()
	for _, c := range s.clusters {
		for _, d := range c.dbs {
			if strings.EqualFold(u.Hostname(), d.dnsName) && port == d.cfg.Port {
				return c, d, pass, true
			}
		}
	}
	if len(sni) > 0 {
		if c, d, ok := s.byRoute(u.Hostname(), sni[0]); ok {
			return c, d, pass, true
		}
	}
	return nil, nil, "", false
}

// attempt returns "" when a new syncer connection for entry r on destination cluster dst would succeed
// now, else the error the syncer would report.
func (s *Sim) attempt(dst *cluster, r ReplicaSourceConfig) string {
	srcCluster, src, pass, ok := s.resolveSource(r.URI, r.ReplicationTLSSNI)
	if !ok {
		return errResolve
	}
	tlsOn := src.eff.TLSMode == "enabled" || src.eff.TLSMode == "replica_ssl"
	switch {
	case !tlsOn && r.Encryption:
		return errTLSToPlain
	case tlsOn && !r.Encryption:
		return errNeedsTLS
	}
	if tlsOn {
		// The syncer pins the source's proxy certificate: it must be the one served now, and valid.
		if pinned := leafOf(r.ServerCert); pinned == nil || fingerprint(pinned) != srcCluster.proxy.fp {
			return errVerify
		}
		if now := s.opts.Now(); now.After(srcCluster.proxy.leaf.NotAfter) || now.Before(srcCluster.proxy.leaf.NotBefore) {
			return errVerifyExpired
		}
		if src.eff.EnforceClientAuthentication == "enabled" {
			presented := dst.syncer.certPEM
			if r.ClientCert != "" {
				presented = r.ClientCert
			}
			leaf := leafOf(presented)
			if leaf == nil {
				return errNoClientCert
			}
			if !trusts(src.eff.AuthenticationSSLClientCerts, leaf) {
				return errUnknownCA
			}
			if now := s.opts.Now(); !src.eff.MTLSAllowOutdatedCerts {
				switch {
				case now.After(leaf.NotAfter):
					return errClientExpired
				case now.Before(leaf.NotBefore):
					return errClientEarly
				}
			}
		}
	}
	// The password check comes after TLS, as on the wire: AUTH is sent over the established session.
	if pass != src.eff.AuthenticationAdminPass {
		return errAuth
	}
	return ""
}

// trusts reports whether the list holds the certificate (same fingerprint).
func trusts(list []string, c *x509.Certificate) bool {
	fp := fingerprint(c)
	for _, p := range list {
		if t := leafOf(p); t != nil && fingerprint(t) == fp {
			return true
		}
	}
	return false
}

// reconnect makes a new connection for the link now, whatever its state.
func (s *Sim) reconnect(dst *cluster, l *link, now time.Time) {
	if s.dpLinks {
		// The data plane makes the connection: the link is being set up until it reports again.
		l.reported, l.stale = nil, true
		return
	}
	if l.reported != nil {
		return // a data plane owns this link's status
	}
	if e := s.attempt(dst, l.cfg); e != "" {
		dst.stats.ConnectFailures++
		l.down(now, e)
		return
	}
	dst.stats.Connects++
	l.connected, l.since, l.lastError, l.lastUpdate = true, now, "", now
}

// retry reconnects a link that is down: the real syncer keeps retrying. In strict mode a connected
// link is checked too, and goes down if a new connection would fail.
func (s *Sim) retry(dst *cluster, l *link, now time.Time) {
	switch {
	case l.reported != nil || s.dpLinks:
	case !l.connected:
		s.reconnect(dst, l, now)
	case s.opts.ReconnectOnRead:
		if e := s.attempt(dst, l.cfg); e != "" {
			dst.stats.ConnectFailures++
			l.down(now, e)
		}
	}
}

func (l *link) down(now time.Time, e string) {
	if l.connected || l.lastError != e {
		l.lastUpdate = now
	}
	if l.connected {
		l.since = now
	}
	l.connected, l.lastError = false, e
}

// retryDown reconnects the down links of the databases being read: the real syncer keeps retrying.
func (s *Sim) retryDown(c *cluster, dbs []*db) {
	now := time.Now()
	for _, d := range dbs {
		for _, r := range d.eff.ReplicaSources {
			s.retry(c, d.links[r.UID], now)
		}
	}
}

// recheckAll is the strict mode's read: every link in the simulator is retried or re-checked.
func (s *Sim) recheckAll() {
	for _, c := range s.clusters {
		s.retryDown(c, c.sortedDBs())
	}
}

// dropConnections reconnects every link whose destination or source is on c.
func (s *Sim) dropConnections(c *cluster) {
	now := time.Now()
	for _, dst := range s.clusters {
		for _, d := range dst.sortedDBs() {
			for _, r := range d.eff.ReplicaSources {
				srcCluster, _, _, ok := s.resolveSource(r.URI, r.ReplicationTLSSNI)
				if dst == c || (ok && srcCluster == c) {
					s.reconnect(dst, d.links[r.UID], now)
				}
			}
		}
	}
}

// syncerRestarted reconnects every link whose destination is c: the syncer restarts with its new
// certificate.
func (s *Sim) syncerRestarted(c *cluster) {
	now := time.Now()
	for _, d := range c.sortedDBs() {
		for _, r := range d.eff.ReplicaSources {
			s.reconnect(c, d.links[r.UID], now)
		}
	}
}

// applyEffective makes d's stored configuration take effect: links follow the new replica sources
// (created, restarted, updated in place or removed) and the data plane is told.
func (s *Sim) applyEffective(c *cluster, d *db) {
	now := time.Now()
	d.eff = d.cfg.clone()
	d.lastChanged = now
	keep := map[int]bool{}
	for _, r := range d.eff.ReplicaSources {
		keep[r.UID] = true
		l := d.links[r.UID]
		switch {
		case l == nil:
			l = &link{cfg: r, since: now, lastUpdate: now}
			d.links[r.UID] = l
			c.stats.FullResyncs++
			s.reconnect(c, l, now)
		case restartNeeded(l.cfg, r):
			l.cfg, l.reported = r, nil
			c.stats.LinkRestarts++
			s.reconnect(c, l, now)
		default:
			l.cfg = r // e.g. compression: no reconnect
		}
	}
	for uid := range d.links {
		if !keep[uid] {
			delete(d.links, uid)
		}
	}
	s.notifyDB(c, d)
}
