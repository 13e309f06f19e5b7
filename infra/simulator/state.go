package simulator

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// DBConfig is the writable configuration of a database, as the simulator stores it. MutateDB hands it
// to tests; the data plane receives it. It holds secrets (admin password, keys): never log it.
type DBConfig struct {
	UID                          int    // read-only
	Name                         string // read-only
	Port                         int    // read-only
	TLSMode                      string // enabled, disabled, replica_ssl
	EnforceClientAuthentication  string // enabled, disabled
	AuthenticationSSLClientCerts []string
	AuthenticationSSLCRDTCerts   []string
	MTLSAllowOutdatedCerts       bool
	AuthenticationAdminPass      string
	ReplicaSources               []ReplicaSourceConfig
}

// ReplicaSourceConfig is the writable part of one replica_sources entry.
type ReplicaSourceConfig struct {
	UID               int // 0 in MutateDB: a new link gets the next uid
	URI               string
	Encryption        bool
	ServerCert        string
	ClientCert        string
	ClientKey         string
	ReplicationTLSSNI string
	Compression       int
}

func (c DBConfig) clone() DBConfig {
	c.AuthenticationSSLClientCerts = slices.Clone(c.AuthenticationSSLClientCerts)
	c.AuthenticationSSLCRDTCerts = slices.Clone(c.AuthenticationSSLCRDTCerts)
	c.ReplicaSources = slices.Clone(c.ReplicaSources)
	return c
}

// source returns the entry with the given uid.
func (c DBConfig) source(uid int) (ReplicaSourceConfig, bool) {
	for _, r := range c.ReplicaSources {
		if r.UID == uid {
			return r, true
		}
	}
	return ReplicaSourceConfig{}, false
}

// restartNeeded reports whether changing an entry from a to b makes the syncer reconnect: only what the
// connection is made of counts (certificates compared by content, not formatting).
func restartNeeded(a, b ReplicaSourceConfig) bool {
	return a.URI != b.URI || a.Encryption != b.Encryption ||
		!samePEM(a.ServerCert, b.ServerCert) || !samePEM(a.ClientCert, b.ClientCert) ||
		a.ReplicationTLSSNI != b.ReplicationTLSSNI
}

// samePEM compares two certificates by fingerprint, falling back to the text when either does not parse.
func samePEM(a, b string) bool {
	if a == b {
		return true
	}
	ca, errA := parseOneCert(a)
	cb, errB := parseOneCert(b)
	if errA != nil || errB != nil {
		return false
	}
	return fingerprint(ca) == fingerprint(cb)
}

// Stats counts link events on a destination cluster.
type Stats struct {
	// FullResyncs counts links created after start (an entry sent without uid): a real cluster copies
	// the whole dataset again, so a client that drops uids shows up here.
	FullResyncs int
	// LinkRestarts counts existing links restarted because uri, encryption, server_cert, client_cert or
	// replication_tls_sni changed.
	LinkRestarts int
	// Connects and ConnectFailures count connection attempts by outcome, those made at New included
	// (not with a LinkOwner data plane: it makes the connections).
	Connects        int
	ConnectFailures int
}

// keyPair is a cluster certificate with its key.
type keyPair struct {
	certPEM, keyPEM string
	leaf            *x509.Certificate
	fp              string
}

// cluster is one simulated cluster; fields other than apiTLS and faults are guarded by Sim.mu.
type cluster struct {
	spec          ClusterSpec
	users         map[string]UserSpec
	admin, viewer UserSpec
	dbs           map[int]*db
	api           keyPair
	syncer        keyPair
	proxy         keyPair
	apiTLS        atomic.Pointer[tls.Certificate] // read on every handshake without the lock
	legacyCertAPI bool
	url           string
	actions       map[string]*action
	stats         Stats
	faults        *faults
	failActions   struct {
		n     int
		shape ActionFailure
	}
	unreachable atomic.Bool          // read on every accept and request without the lock
	crdbs       map[string]*crdb     // Active-Active databases with an instance here, by guid (crdb.go)
	routes      map[string]int       // route host -> database uid (routes.go)
	ingresses   map[string]bool      // ingress hosts routing by SNI
	crdbTasks   map[string]*crdbTask // by task id
}

// sortedDBs lists the databases by uid.
func (c *cluster) sortedDBs() []*db {
	out := make([]*db, 0, len(c.dbs))
	for _, d := range c.dbs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.UID < out[j].cfg.UID })
	return out
}

// db is one database. cfg is what the API shows (a PUT stores it at once); eff is what links and the
// data plane use, and catches up with cfg when the action completes.
type db struct {
	cfg           DBConfig
	eff           DBConfig
	dnsName       string
	created       time.Time
	lastChanged   time.Time
	running       *action // the action in progress, if any
	actions       []*action
	links         map[int]*link // by replica source uid; follows eff
	nextSourceUID int
	crdtGUID      string // non-empty: the local instance of an Active-Active database
}

// endpointUID is the endpoint's id as Redis Enterprise formats it: "<bdb uid>:<n>".
func (d *db) endpointUID() string { return strconv.Itoa(d.cfg.UID) + ":1" }

// action is an asynchronous change on a database (SMUpdateBDB).
type action struct {
	uid      string
	dbUID    int
	started  time.Time
	duration time.Duration // negative: runs until CompleteActions
	done     bool
	failure  ActionFailure // non-empty: the action fails when it would complete
	timer    *time.Timer
}

func (a *action) progress(now time.Time) float64 {
	switch {
	case a.done:
		return 100
	case a.duration <= 0:
		return 0
	}
	p := float64(now.Sub(a.started)) / float64(a.duration) * 100
	return min(max(p, 0), 99)
}

// link is the syncer connection of one replica source entry, as the destination sees it.
type link struct {
	cfg        ReplicaSourceConfig // effective entry
	connected  bool
	since      time.Time // connected: when the connection was made; down: when it went down
	lastError  string
	lastUpdate time.Time
	reported   *LinkReport
	// With a LinkOwner: stale marks a (re)connection no data plane call has carried yet; after is the
	// call that carries it. Reports count once that call has returned.
	stale bool
	after uint64
}

func (l *link) status(now time.Time, syncDelay time.Duration) (status string, lag int64, lastError string) {
	if r := l.reported; r != nil {
		return r.Status, r.Lag, r.LastError
	}
	if !l.connected {
		return "out-of-sync", now.Sub(l.since).Milliseconds(), l.lastError
	}
	if now.Sub(l.since) < syncDelay {
		return "syncing", 0, ""
	}
	return "in-sync", 0, ""
}

func newActionUID(seq uint64, cluster string) string {
	// Looks like the real UUIDs, stays unique per simulator without randomness.
	h := fnv64(cluster)
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(h), uint16(h>>32), seq>>48&0xfff, seq>>36&0xfff, seq&0xffffffffffff)
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
