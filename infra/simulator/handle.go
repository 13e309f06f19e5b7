package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ClusterHandle gives tests and the demo direct access to one cluster: what an operator could do
// through the UI or rladmin, fault injection and counters. Its ClusterInfo is a snapshot taken when
// the handle was made; the methods always see the current state.
type ClusterHandle struct {
	ClusterInfo
	s *Sim
	c *cluster
}

// SyncerCert returns the cluster's current syncer certificate and key.
func (h *ClusterHandle) SyncerCert() (certPEM, keyPEM string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.c.syncer.certPEM, h.c.syncer.keyPEM
}

// ProxyCert returns the cluster's current proxy certificate and key.
func (h *ClusterHandle) ProxyCert() (certPEM, keyPEM string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.c.proxy.certPEM, h.c.proxy.keyPEM
}

// SetSyncerCert replaces the syncer certificate as rladmin would: same validation and effects as the
// API (the syncer restarts and every link whose destination is this cluster reconnects).
func (h *ClusterHandle) SetSyncerCert(certPEM, keyPEM string) error {
	return h.setCert("syncer", certPEM, keyPEM)
}

// SetProxyCert replaces the proxy certificate as rladmin would; it applies to new connections.
func (h *ClusterHandle) SetProxyCert(certPEM, keyPEM string) error {
	return h.setCert("proxy", certPEM, keyPEM)
}

func (h *ClusterHandle) setCert(name, certPEM, keyPEM string) error {
	if e := h.s.installCerts(h.c, []certUpdate{{Name: name, Certificate: certPEM, Key: keyPEM}}); e != nil {
		return fmt.Errorf("set %s certificate on %s: %w", name, h.Name, e)
	}
	return nil
}

// DB returns database uid as GET /v1/bdbs/{uid} would, and like a read it makes down links retry.
func (h *ClusterHandle) DB(uid int) (json.RawMessage, error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	d := h.c.dbs[uid]
	if d == nil {
		return nil, fmt.Errorf("db %d on %s: does not exist", uid, h.Name)
	}
	if h.s.opts.ReconnectOnRead {
		h.s.recheckAll()
	}
	h.s.retryDown(h.c, []*db{d})
	b, err := json.Marshal(h.s.renderDB(d, d.cfg, time.Now()))
	if err != nil {
		return nil, fmt.Errorf("encode db %d on %s: %w", uid, h.Name, err)
	}
	return b, nil
}

// MutateDB changes a database directly, as a manual change in the UI would, to simulate drift. fn gets
// a copy of the stored configuration; nothing is validated beyond consistency (an expired or garbage
// certificate may be planted on purpose). The change takes effect at once: links follow as after a
// completed action. Entries with UID 0 are new links.
func (h *ClusterHandle) MutateDB(uid int, fn func(*DBConfig)) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	d := h.c.dbs[uid]
	if d == nil {
		return fmt.Errorf("mutate db %d on %s: does not exist", uid, h.Name)
	}
	cfg := d.cfg.clone()
	fn(&cfg)
	var errs []error
	if cfg.UID != d.cfg.UID || cfg.Name != d.cfg.Name || cfg.Port != d.cfg.Port {
		errs = append(errs, errors.New("uid, name and port are read-only"))
	}
	if !validTLSMode(cfg.TLSMode) {
		errs = append(errs, fmt.Errorf("tls_mode %q is not a known mode", cfg.TLSMode))
	}
	if !validOnOff(cfg.EnforceClientAuthentication) {
		errs = append(errs, fmt.Errorf("enforce_client_authentication %q: want enabled or disabled", cfg.EnforceClientAuthentication))
	}
	if len(cfg.ReplicaSources) > maxReplicaSources {
		errs = append(errs, fmt.Errorf("more than %d replica sources", maxReplicaSources))
	}
	next := d.nextSourceUID
	seen := map[int]bool{}
	for i := range cfg.ReplicaSources {
		r := &cfg.ReplicaSources[i]
		if r.UID == 0 {
			r.UID = next
			next++
		} else if _, ok := d.cfg.source(r.UID); !ok || seen[r.UID] {
			errs = append(errs, fmt.Errorf("replica source %d: uid %d is not an existing, unique uid", i+1, r.UID))
		}
		seen[r.UID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mutate db %d on %s: %w", uid, h.Name, err)
	}
	d.cfg, d.nextSourceUID = cfg, next
	h.s.applyEffective(h.c, d)
	return nil
}

// CompleteActions completes every running action on this cluster now and reports how many there were.
// With a negative Options.ActionDuration it is the only way actions complete.
func (h *ClusterHandle) CompleteActions() int {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	n := 0
	for _, d := range h.c.sortedDBs() {
		if a := d.running; a != nil {
			h.s.completeAction(h.c, d, a)
			n++
		}
	}
	return n
}

// DropConnections cuts every replication connection whose destination or source is this cluster; each
// reconnects at once under the rules of this moment.
func (h *ClusterHandle) DropConnections() {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.s.dropConnections(h.c)
	if h.s.started {
		name := h.Name
		h.s.pushDP(func(ctx context.Context) {
			if err := h.s.dp.DropConnections(ctx, name); err != nil {
				h.s.log.Warn("data plane: drop connections", "cluster", name, "err", err)
			}
		})
	}
}

// Stats returns the link counters of this cluster as a destination.
func (h *ClusterHandle) Stats() Stats {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.c.stats
}

// SetLegacyCertAPI makes PUT /v1/cluster/certificates answer 404 (a cluster older than 7.22.2), or not.
func (h *ClusterHandle) SetLegacyCertAPI(legacy bool) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.c.legacyCertAPI = legacy
}

// Calls returns the number of requests per route, keyed like "GET /v1/bdbs/{uid}" or "PUT /v1/bdbs/{uid}"
// (requests matching no route: "GET (no route)"). Every request counts, faulted ones included.
func (h *ClusterHandle) Calls() map[string]int {
	m, _ := h.c.faults.counts()
	return m
}

// TotalCalls is the number of requests of every route.
func (h *ClusterHandle) TotalCalls() int {
	_, n := h.c.faults.counts()
	return n
}

// ResetCalls zeroes the counters.
func (h *ClusterHandle) ResetCalls() { h.c.faults.resetCounts() }

// SetLatency delays every call by d before it is handled (0 turns it off).
func (h *ClusterHandle) SetLatency(d time.Duration) { h.c.faults.setLatency(d) }

// SetErrorRate fails the given fraction (0-1) of calls to route (or AnyRoute) with status, drawn from
// the simulator's seeded generator so runs repeat. A rate of 0 removes it.
func (h *ClusterHandle) SetErrorRate(route string, rate float64, status int) {
	h.c.faults.setErrorRate(route, rate, status)
}

// FailNext fails the next n calls to route (or AnyRoute) with status and an error body, before any
// other processing: nothing changes. 409 carries error_code busy, 503 node_not_responding.
func (h *ClusterHandle) FailNext(route string, n, status int) {
	h.c.faults.setFailNext(route, n, status)
}

// DropNext closes the connection of the next n calls to route (or AnyRoute) without any response and
// without handling them. Note that net/http clients silently retry an idempotent request (GET) that
// was dropped on a reused keep-alive connection: such a retry consumes one more drop, or succeeds.
func (h *ClusterHandle) DropNext(route string, n int) { h.c.faults.setDropNext(route, n) }

// ClearFaults removes every injected fault.
func (h *ClusterHandle) ClearFaults() { h.c.faults.clear() }

// EmptyNext sends the next n successful (2xx) answers to route (or AnyRoute) without a body: status
// and effect unchanged, a PUT still applies. The documentation allows it: "Some responses may have an
// empty body but indicate the response with standard HTTP codes." (redis.io, Redis Software REST
// API, "JSON requests and responses", https://redis.io/docs/latest/operate/rs/references/rest-api/).
func (h *ClusterHandle) EmptyNext(route string, n int) { h.c.faults.setEmptyNext(route, n) }

// SetPadding adds an unknown string field of n bytes to every JSON object of successful answers to
// route (or AnyRoute): the object, or each element of a list. With fields filtering the padding stays,
// so a list of a few hundred databases can be made larger than any client's response cap. 0 removes it.
func (h *ClusterHandle) SetPadding(route string, n int) { h.c.faults.setPadding(route, n) }

// PartialCertUpdates answers the next n valid certificate updates (PUT /v1/cluster/certificates or
// PUT /v1/cluster/update_cert) with 409 nodes_not_updated, the documented "Failed, not all nodes have
// been updated" (redis.io, Redis Software REST API, "Cluster certificates requests",
// https://redis.io/docs/latest/operate/rs/references/rest-api/requests/cluster/certificates/).
// The certificate is installed all the same: the update is partially applied, not rolled back.
func (h *ClusterHandle) PartialCertUpdates(n int) { h.c.faults.setPartial(n) }

// ActionFailure is where a failed action puts its error text; the documentation names three places.
type ActionFailure string

const (
	// ActionFailError: "error": "A descriptive error string for failed state machine, when known"
	// (redis.io, Redis Software REST API objects, "State machine object",
	// https://redis.io/docs/latest/operate/rs/references/rest-api/objects/state-machine/).
	ActionFailError ActionFailure = "error"
	// ActionFailErrorCode: "When a task fails, the error_code and error_message fields describe the
	// error." (redis.io, Redis Software REST API objects, "Action object",
	// https://redis.io/docs/latest/operate/rs/references/rest-api/objects/action/); error_code is
	// internal_error, one of the documented values.
	ActionFailErrorCode ActionFailure = "error_code"
	// ActionFailAdditionalInfo: additional_info.error, "A message that describes what error occurred if
	// the action failed" (redis.io, Redis Software REST API, "Actions requests", v2 actions,
	// https://redis.io/docs/latest/operate/rs/references/rest-api/requests/actions/).
	ActionFailAdditionalInfo ActionFailure = "additional_info"
)

// FailNextActions makes the next n actions started on this cluster fail when they would complete:
// GET /v1/actions/{uid} shows status "failed" with the error text in the given shape, and the change
// is not applied (the database shows its effective configuration again). n = 0 cancels.
func (h *ClusterHandle) FailNextActions(n int, shape ActionFailure) error {
	switch shape {
	case ActionFailError, ActionFailErrorCode, ActionFailAdditionalInfo:
	default:
		return fmt.Errorf("fail actions on %s: shape %q: want %q, %q or %q", h.Name, shape,
			ActionFailError, ActionFailErrorCode, ActionFailAdditionalInfo)
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.c.failActions.n, h.c.failActions.shape = n, shape
	return nil
}

// SetUnreachable makes the cluster's API act dead (true) or alive again (false): new connections are
// accepted and closed at once, before the TLS handshake, and requests on connections made before get
// no answer (the connection is closed) and are not counted. A client sees a peer that hangs up: the
// API process is down behind a live address. A cluster that answers too slowly is SetLatency.
func (h *ClusterHandle) SetUnreachable(down bool) { h.c.unreachable.Store(down) }
