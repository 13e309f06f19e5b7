package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

// Active-Active databases, as far as certificate rotation meets them.
//
// The syncer certificate is shared with Active-Active databases, and after replacing the syncer or
// proxy certificate on a cluster "crdb-cli crdb update --crdb-guid <GUID> --force" must run for each
// Active-Active database on it: "Between the two steps, new syncer connections that use the 'old'
// certificate will get rejected" (redis.io, Redis Software > Security > Certificates > Update
// certificates, "Active-Active database certificates"). The REST equivalent is
// POST /v1/crdbs/{crdb_guid}/updates with a modify_request whose force_update is true ("Force the
// configuration update and increment the configuration version even if there is no change", CRDB
// modify_request object), answered with a CRDB task object (status queued, started, finished,
// failed) that GET /v1/crdb_tasks/{task_id} follows. GET /v1/crdbs/{crdb_guid}/health_report shows
// each instance's connections to the other clusters and a connection_error when a remote cluster is
// not available (CRDB health report object).
//
// The simulator models one thing per database: after a certificate change on the cluster the
// database is stale (its peers reject the new certificate's connections) until a force update
// reaches every participating cluster; a force update fails, and changes nothing, while a
// participant is unreachable.

// crdb is one Active-Active database with an instance on a cluster.
type crdb struct {
	guid         string
	localUID     int
	participants []string        // the other instances' cluster FQDNs
	unreachable  map[string]bool // participants that cannot be reached
	configVer    int
	stale        bool // a certificate changed here since the last force update
	forced       int  // force updates applied
}

// crdbTask is a CRDB task as GET /v1/crdb_tasks/{task_id} shows it.
type crdbTask struct {
	id, guid, status string
	errors           []map[string]string
	polled           bool
}

// AddActiveActive makes database uid the local instance of Active-Active database guid, with
// instances on the participant clusters (FQDNs). The database then shows crdt true and crdt_guid.
func (h *ClusterHandle) AddActiveActive(guid string, uid int, participants ...string) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	d := h.c.dbs[uid]
	if d == nil {
		return fmt.Errorf("cluster %s has no database %d", h.c.spec.Name, uid)
	}
	if guid == "" {
		return fmt.Errorf("empty Active-Active guid")
	}
	if h.c.crdbs == nil {
		h.c.crdbs = map[string]*crdb{}
	}
	h.c.crdbs[guid] = &crdb{guid: guid, localUID: uid, participants: slices.Clone(participants), unreachable: map[string]bool{}, configVer: 1}
	d.crdtGUID = guid
	return nil
}

// SetActiveActivePeerReachable says whether participant (an FQDN) of guid can be reached.
func (h *ClusterHandle) SetActiveActivePeerReachable(guid, participant string, reachable bool) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	cr := h.c.crdbs[guid]
	if cr == nil {
		return fmt.Errorf("cluster %s has no Active-Active database %s", h.c.spec.Name, guid)
	}
	cr.unreachable[participant] = !reachable
	return nil
}

// ActiveActiveState reports whether guid is stale (a certificate changed and no force update has
// followed: its peers reject new syncer connections) and how many force updates it received.
func (h *ClusterHandle) ActiveActiveState(guid string) (stale bool, forced int, err error) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	cr := h.c.crdbs[guid]
	if cr == nil {
		return false, 0, fmt.Errorf("cluster %s has no Active-Active database %s", h.c.spec.Name, guid)
	}
	return cr.stale, cr.forced, nil
}

// crdbsCertsChanged marks every Active-Active database of c stale; the caller holds s.mu.
func (s *Sim) crdbsCertsChanged(c *cluster) {
	for _, cr := range c.crdbs {
		cr.stale = true
	}
}

func pathCRDB(c *cluster, r *http.Request) (*crdb, *apiError) {
	if cr := c.crdbs[r.PathValue("guid")]; cr != nil {
		return cr, nil
	}
	return nil, &apiError{status: http.StatusNotFound, code: "crdb_not_found", msg: fmt.Sprintf("Active-Active database %.40q not found", r.PathValue("guid"))}
}

func (s *Sim) getCRDBHealth(c *cluster, r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr, e := pathCRDB(c, r)
	if e != nil {
		return 0, e
	}
	var connErr string
	conns := make([]map[string]any, 0, len(cr.participants))
	for i, p := range cr.participants {
		status, link := "ok", "up"
		if cr.unreachable[p] {
			status, link = "error", "down"
			connErr = fmt.Sprintf("cluster %s is not available", p)
		} else if cr.stale {
			link = "down"
		}
		conns = append(conns, map[string]any{"name": p, "status": status,
			"replication_links": []map[string]any{{"link_uid": fmt.Sprintf("%d:%d", cr.localUID, i+1), "status": link}}})
	}
	return http.StatusOK, []map[string]any{{
		"name": "crdb-" + cr.guid, "cluster_name": c.spec.FQDN, "active_config_version": cr.configVer,
		"connection_error": connErr, "connections": conns,
	}}
}

func (s *Sim) postCRDBUpdates(c *cluster, r *http.Request) (int, any) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return 0, badSchema("request body unreadable or larger than %d bytes", maxBody)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, badSchema("request body is not a JSON object")
	}
	var force bool
	if raw, ok := req["force_update"]; !ok || json.Unmarshal(raw, &force) != nil || !force || len(req) != 1 {
		return 0, badSchema("the simulator models only {\"force_update\": true}")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cr, e := pathCRDB(c, r)
	if e != nil {
		return 0, e
	}
	if c.crdbTasks == nil {
		c.crdbTasks = map[string]*crdbTask{}
	}
	t := &crdbTask{id: strconv.Itoa(len(c.crdbTasks) + 1), guid: cr.guid, status: "finished"}
	for _, p := range cr.participants {
		if cr.unreachable[p] {
			t.status = "failed"
			t.errors = append(t.errors, map[string]string{"cluster_name": p, "error_code": "cluster_unreachable", "description": "cluster is not available"})
		}
	}
	if t.status == "finished" {
		cr.stale, cr.forced, cr.configVer = false, cr.forced+1, cr.configVer+1
	}
	c.crdbTasks[t.id] = t
	return http.StatusOK, map[string]any{"id": t.id, "crdb_guid": t.guid, "status": "queued", "operation": "update_crdb"}
}

func (s *Sim) getCRDBTask(c *cluster, r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := c.crdbTasks[r.PathValue("id")]
	if t == nil {
		return 0, &apiError{status: http.StatusNotFound, code: "task_not_found", msg: "no such task"}
	}
	status := t.status
	if !t.polled {
		// Asynchronous like the real coordinator: the first poll still sees it running.
		t.polled, status = true, "started"
	}
	out := map[string]any{"id": t.id, "crdb_guid": t.guid, "status": status, "operation": "update_crdb"}
	if status == "failed" {
		out["errors"] = t.errors
	}
	return http.StatusOK, out
}
