package simulator

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// apiError is an error response: HTTP status, error_code and a message that never quotes secrets.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.status, e.code, e.msg)
}

// endpoint is one method on one route.
type endpoint struct {
	adminOnly bool // writes, and reads that return private keys
	serve     func(r *http.Request) (int, any)
}

const maxBody = 1 << 20

// handler is one cluster's API.
func (s *Sim) handler(c *cluster) http.Handler {
	mux := http.NewServeMux()
	add := func(pattern string, methods map[string]endpoint) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, c, pattern, methods)
		})
	}
	read := func(f func(r *http.Request) (int, any)) endpoint { return endpoint{serve: f} }
	write := func(f func(r *http.Request) (int, any)) endpoint { return endpoint{adminOnly: true, serve: f} }

	add("/v1/bdbs", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getDBs(c, r) }),
	})
	add("/v1/bdbs/{uid}", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getDB(c, r) }),
		http.MethodPut: write(func(r *http.Request) (int, any) { return s.putDB(c, r) }),
	})
	add("/v1/actions/{uid}", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getAction(c, r) }),
	})
	add("/v1/actions/bdb/{uid}", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getDBActions(c, r) }),
	})
	add("/v1/cluster", map[string]endpoint{
		http.MethodGet: read(func(*http.Request) (int, any) { return s.getCluster(c) }),
	})
	add("/v1/cluster/certificates", map[string]endpoint{
		http.MethodGet: {adminOnly: true, serve: func(*http.Request) (int, any) { return s.getCertificates(c) }},
		http.MethodPut: write(func(r *http.Request) (int, any) { return s.putCertificates(c, r) }),
	})
	add("/v1/cluster/update_cert", map[string]endpoint{
		http.MethodPut: write(func(r *http.Request) (int, any) { return s.putUpdateCert(c, r) }),
	})
	add("/v1/crdbs/{guid}/health_report", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getCRDBHealth(c, r) }),
	})
	add("/v1/crdbs/{guid}/updates", map[string]endpoint{
		http.MethodPost: write(func(r *http.Request) (int, any) { return s.postCRDBUpdates(c, r) }),
	})
	add("/v1/crdb_tasks/{id}", map[string]endpoint{
		http.MethodGet: read(func(r *http.Request) (int, any) { return s.getCRDBTask(c, r) }),
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, c, "", nil)
	})
	return mux
}

// serve runs what every call goes through: counting, faults, authentication, routing, the answer.
func (s *Sim) serve(w http.ResponseWriter, r *http.Request, c *cluster, pattern string, methods map[string]endpoint) {
	route := r.Method + " " + pattern
	if pattern == "" {
		route = r.Method + " (no route)"
	}
	if c.unreachable.Load() {
		// A request on a connection made before SetUnreachable: a dead API process answers nothing.
		hangUp(w)
		return
	}
	v := c.faults.decide(route)
	if r.Method == http.MethodPut && r.URL.Query().Get("dry_run") == "true" {
		// Counted apart as well, so tests can tell validations from writes (see DryRunSuffix).
		c.faults.note(route + DryRunSuffix)
	}
	if v.latency > 0 {
		t := time.NewTimer(v.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if v.drop {
		s.log.Debug("api call dropped", "cluster", c.spec.Name, "route", route)
		if hangUp(w) {
			return
		}
		// Unreachable with HTTP/1.1 only; answer like a node that is gone rather than not at all.
		v.status = http.StatusServiceUnavailable
	}
	status, body := s.route(r, c, methods, pattern, v.status)
	s.log.Debug("api call", "cluster", c.spec.Name, "route", route, "status", status)
	if status == http.StatusMethodNotAllowed {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Redis Enterprise"`)
	}
	if status >= 200 && status <= 299 {
		empty, padding := c.faults.shape(route)
		if empty {
			// "Some responses may have an empty body but indicate the response with standard HTTP
			// codes." (redis.io, Redis Software REST API, "JSON requests and responses",
			// https://redis.io/docs/latest/operate/rs/references/rest-api/)
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(status)
			return
		}
		switch b := pad(body, padding).(type) {
		case lazyList:
			writeList(w, status, b)
			return
		case []map[string]any:
			writeList(w, status, lazyList{n: len(b), item: func(i int) map[string]any { return b[i] }})
			return
		default:
			body = b
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":"internal_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) // not append(b, '\n'): a list of thousands of databases is not copied again
	_, _ = w.Write([]byte{'\n'})
}

// lazyList is a list answer whose elements are made as they are written.
type lazyList struct {
	n    int
	item func(i int) map[string]any
}

// writeList streams a list element by element: a list of thousands of databases is never held as
// one buffer (the cluster tests run a simulated fleet in the same process as the client they measure).
func writeList(w http.ResponseWriter, status int, list lazyList) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	sep := []byte{'['}
	for i := range list.n {
		b, err := json.Marshal(list.item(i))
		if err != nil {
			// Plain values always encode; should one not, cut the answer rather than send half a list.
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(sep); err != nil {
			return
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		sep = []byte{','}
	}
	if list.n == 0 {
		_, _ = w.Write(sep)
	}
	_, _ = w.Write([]byte("]\n"))
}

// hangUp closes the request's connection without an answer; false when it cannot (not HTTP/1.1).
func hangUp(w http.ResponseWriter) bool {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return true
		}
	}
	return false
}

// paddingField is the unknown field SetPadding adds: real responses carry many fields a client does
// not know, and newer versions add more.
const paddingField = "x_sim_padding"

// pad adds n bytes of padding to the object, or to each object of a list.
func pad(body any, n int) any {
	if n <= 0 {
		return body
	}
	filler := strings.Repeat("x", n)
	switch b := body.(type) {
	case map[string]any:
		out := make(map[string]any, len(b)+1)
		for k, v := range b {
			out[k] = v
		}
		out[paddingField] = filler
		return out
	case []map[string]any:
		out := make([]map[string]any, len(b))
		for i, m := range b {
			out[i] = pad(m, n).(map[string]any)
		}
		return out
	case lazyList:
		return lazyList{n: b.n, item: func(i int) map[string]any { return pad(b.item(i), n).(map[string]any) }}
	}
	return body
}

func (s *Sim) route(r *http.Request, c *cluster, methods map[string]endpoint, pattern string, injected int) (int, any) {
	if injected != 0 {
		if injected < 100 || injected > 599 {
			injected = http.StatusInternalServerError
		}
		return injected, s.errorBody(injectedError(injected))
	}
	u, ok := s.authenticate(r, c)
	if !ok {
		return http.StatusUnauthorized, s.errorBody(&apiError{status: http.StatusUnauthorized, code: "unauthorized",
			msg: "missing or wrong credentials"})
	}
	if pattern == "" {
		return http.StatusNotFound, s.errorBody(&apiError{status: http.StatusNotFound, code: "not_found", msg: "no such resource"})
	}
	ep, ok := methods[r.Method]
	if !ok {
		return http.StatusMethodNotAllowed, s.errorBody(&apiError{status: http.StatusMethodNotAllowed,
			code: "method_not_allowed", msg: r.Method + " is not allowed here"})
	}
	if ep.adminOnly && u.Role != RoleAdmin {
		return http.StatusForbidden, s.errorBody(&apiError{status: http.StatusForbidden, code: "insufficient_permissions",
			msg: "role " + u.Role + " may not do this"})
	}
	if s.opts.ReconnectOnRead && r.Method == http.MethodGet {
		s.mu.Lock()
		s.recheckAll()
		s.mu.Unlock()
	}
	status, body := ep.serve(r)
	if e, ok := body.(*apiError); ok {
		return e.status, s.errorBody(e)
	}
	return status, body
}

func injectedError(status int) *apiError {
	code := "injected_fault"
	switch status {
	case http.StatusConflict:
		code = "busy"
	case http.StatusServiceUnavailable:
		code = "node_not_responding"
	}
	return &apiError{status: status, code: code, msg: "fault injected by the simulator"}
}

func (s *Sim) errorBody(e *apiError) map[string]string {
	return map[string]string{"error_code": e.code, s.opts.ErrorMessageField: e.msg}
}

// authenticate checks HTTP basic auth against the cluster's users (the user set never changes).
func (s *Sim) authenticate(r *http.Request, c *cluster) (UserSpec, bool) {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return UserSpec{}, false
	}
	u, known := c.users[name]
	if !known || subtle.ConstantTimeCompare([]byte(pass), []byte(u.Password)) != 1 {
		return UserSpec{}, false
	}
	return u, true
}

// pathDB finds the database named by the {uid} path segment; only canonical positive integers match.
func pathDB(c *cluster, r *http.Request) (*db, *apiError) {
	raw := r.PathValue("uid")
	uid, err := strconv.Atoi(raw)
	if err == nil && strconv.Itoa(uid) == raw {
		if d := c.dbs[uid]; d != nil {
			return d, nil
		}
	}
	return nil, &apiError{status: http.StatusNotFound, code: "bdb_not_exist",
		msg: fmt.Sprintf("database %.20q does not exist", raw)}
}

// fieldsOf reads ?fields=a,b (repeatable); nil means every field.
func fieldsOf(r *http.Request) []string {
	var out []string
	for _, v := range r.URL.Query()["fields"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

func wantsLinks(fields []string) bool {
	if fields == nil {
		return true
	}
	for _, f := range fields {
		if f == "replica_sources" {
			return true
		}
	}
	return false
}

// getDBs answers with every database, each rendered under the lock as it is written: a list of
// thousands is never held whole. The documentation promises no snapshot across databases; here a
// change that lands while the list is written shows in the databases written after it.
func (s *Sim) getDBs(c *cluster, r *http.Request) (int, any) {
	fields := fieldsOf(r)
	s.mu.Lock()
	dbs := c.sortedDBs()
	if wantsLinks(fields) {
		s.retryDown(c, dbs)
	}
	s.mu.Unlock()
	return http.StatusOK, lazyList{n: len(dbs), item: func(i int) map[string]any {
		s.mu.Lock()
		defer s.mu.Unlock()
		return filterFields(s.renderDB(dbs[i], dbs[i].cfg, time.Now()), fields)
	}}
}

func (s *Sim) getDB(c *cluster, r *http.Request) (int, any) {
	d, e := pathDB(c, r)
	if e != nil {
		return 0, e
	}
	fields := fieldsOf(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if wantsLinks(fields) {
		s.retryDown(c, []*db{d})
	}
	return http.StatusOK, filterFields(s.renderDB(d, d.cfg, time.Now()), fields)
}

func (s *Sim) putDB(c *cluster, r *http.Request) (int, any) {
	d, e := pathDB(c, r)
	if e != nil {
		return 0, e
	}
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return 0, badSchema("dry_run must be true or false")
		}
		dryRun = b
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return 0, badSchema("request body unreadable or larger than %d bytes", maxBody)
	}
	u, e := decodeDBUpdate(body, s.opts.Now())
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, next, e := u.apply(d.cfg, d.nextSourceUID)
	if e != nil {
		return 0, e
	}
	if d.running != nil {
		return 0, &apiError{status: http.StatusConflict, code: "busy",
			msg: "the database is busy with another change (action " + d.running.uid + "); retry later"}
	}
	now := time.Now()
	if dryRun {
		return http.StatusOK, s.renderDB(d, cfg, now)
	}
	d.cfg, d.nextSourceUID = cfg, next
	s.startAction(c, d, now)
	s.log.Info("database change accepted", "cluster", c.spec.Name, "db", d.cfg.UID, "action", d.running.uid)
	return http.StatusOK, s.renderDB(d, d.cfg, now)
}

// startAction marks d busy; the stored configuration takes effect when the action completes (or is
// dropped when FailNextActions made it one to fail).
func (s *Sim) startAction(c *cluster, d *db, now time.Time) {
	s.actionSeq++
	a := &action{uid: newActionUID(s.actionSeq, c.spec.Name), dbUID: d.cfg.UID, started: now, duration: s.opts.ActionDuration}
	if c.failActions.n > 0 {
		c.failActions.n--
		a.failure = c.failActions.shape
	}
	c.actions[a.uid] = a
	d.actions = append(d.actions, a)
	d.running = a
	if a.duration > 0 {
		a.timer = time.AfterFunc(a.duration, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.closed {
				s.completeAction(c, d, a)
			}
		})
	}
}

func (s *Sim) completeAction(c *cluster, d *db, a *action) {
	if a.done {
		return
	}
	a.done = true
	if a.timer != nil {
		a.timer.Stop()
	}
	if d.running == a {
		d.running = nil
	}
	if a.failure != "" {
		// Where the documentation is silent: a failed change is not applied, and the database shows
		// its effective configuration again.
		d.cfg = d.eff.clone()
		s.log.Info("database change failed", "cluster", c.spec.Name, "db", d.cfg.UID, "action", a.uid, "shape", string(a.failure))
		return
	}
	s.applyEffective(c, d)
	s.log.Info("database change completed", "cluster", c.spec.Name, "db", d.cfg.UID, "action", a.uid)
}

func (s *Sim) getAction(c *cluster, r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := c.actions[r.PathValue("uid")]
	if a == nil {
		return 0, &apiError{status: http.StatusNotFound, code: "action_not_exist", msg: "no such action"}
	}
	return http.StatusOK, renderAction(a, time.Now())
}

func (s *Sim) getDBActions(c *cluster, r *http.Request) (int, any) {
	d, e := pathDB(c, r)
	if e != nil {
		return 0, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]map[string]any, 0, len(d.actions))
	for _, a := range d.actions {
		out = append(out, renderAction(a, now))
	}
	return http.StatusOK, out
}

func (s *Sim) getCluster(c *cluster) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return http.StatusOK, map[string]any{
		"name":               c.spec.FQDN,
		"proxy_certificate":  c.proxy.certPEM,
		"syncer_certificate": c.syncer.certPEM,
		"created_time":       c.api.leaf.NotBefore.UTC().Format(time.RFC3339),
		"email_alerts":       false,
		"rack_aware":         false,
		"cm_port":            8443,
		"cnm_http_port":      8080,
		"cnm_https_port":     9443,
		"handle_redirects":   false,
		"sentinel_tls_mode":  "disabled",
		"alert_settings": map[string]any{
			"cluster_certs_about_to_expire": map[string]any{"enabled": true, "threshold": "45"},
		},
	}
}

func (s *Sim) getCertificates(c *cluster) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return http.StatusOK, map[string]string{
		"api_cert": c.api.certPEM, "api_key": c.api.keyPEM,
		"proxy_cert": c.proxy.certPEM, "proxy_key": c.proxy.keyPEM,
		"syncer_cert": c.syncer.certPEM, "syncer_key": c.syncer.keyPEM,
	}
}

func (s *Sim) putUpdateCert(c *cluster, r *http.Request) (int, any) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return 0, badSchema("request body unreadable or larger than %d bytes", maxBody)
	}
	cu, e := decodeCertUpdate(body)
	if e != nil {
		return 0, e
	}
	if e := s.installCerts(c, []certUpdate{cu}); e != nil {
		return 0, e
	}
	if e := partialCertUpdate(c); e != nil {
		return 0, e
	}
	return http.StatusOK, map[string]any{}
}

// partialCertUpdate answers a valid certificate update with 409 when PartialCertUpdates asked for it.
// Both certificate update calls document "409 Conflict | Failed, not all nodes have been updated"
// (redis.io, Redis Software REST API, "Cluster certificates requests",
// https://redis.io/docs/latest/operate/rs/references/rest-api/requests/cluster/certificates/).
// The documentation is silent on the state left behind and on the error_code; the simulator installs
// the certificate (the answering node has it: partially applied, not rolled back) and says
// nodes_not_updated. Sending the same update again succeeds once the injected 409s are used up.
func partialCertUpdate(c *cluster) *apiError {
	if !c.faults.takePartial() {
		return nil
	}
	return &apiError{status: http.StatusConflict, code: "nodes_not_updated", msg: "not all nodes have been updated"}
}

func (s *Sim) putCertificates(c *cluster, r *http.Request) (int, any) {
	s.mu.Lock()
	legacy := c.legacyCertAPI
	s.mu.Unlock()
	if legacy {
		return 0, &apiError{status: http.StatusNotFound, code: "not_found", msg: "no such resource"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return 0, badSchema("request body unreadable or larger than %d bytes", maxBody)
	}
	ups, e := decodeCertificates(body)
	if e != nil {
		return 0, e
	}
	if e := s.installCerts(c, ups); e != nil {
		return 0, e
	}
	if e := partialCertUpdate(c); e != nil {
		return 0, e
	}
	return http.StatusOK, map[string]any{}
}
