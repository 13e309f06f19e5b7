package simulator

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAPICertificateIsPinned(t *testing.T) {
	_, east, west := startDemo(t, Options{})
	tests := []struct {
		name    string
		pin     string
		wantErr bool
	}{
		{"the cluster's own API certificate", east.APICertPEM, false},
		{"another cluster's API certificate", west.APICertPEM, true},
		{"the cluster's proxy certificate", func() string { c, _ := east.ProxyCert(); return c }(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, tt.pin, false)}
			status, _, err := c.try(http.MethodGet, "/v1/cluster", nil)
			var unknownAuthority x509.UnknownAuthorityError
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("call succeeded (status %d) with a wrong pinned certificate", status)
			case tt.wantErr && !errors.As(err, &unknownAuthority):
				t.Fatalf("error %v, want an unknown authority error", err)
			case !tt.wantErr && (err != nil || status != http.StatusOK):
				t.Fatalf("status %d, error %v; want 200", status, err)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	admin, viewer := adminClient(t, east), viewerClient(t, east)
	anon := &client{t: t, base: east.URL, hc: admin.hc}
	wrong := &client{t: t, base: east.URL, user: east.AdminUser, pass: "not-the-password", hc: admin.hc}
	stranger := &client{t: t, base: east.URL, user: "nobody@example.com", pass: east.AdminPassword, hc: admin.hc}
	cert, key := east.SyncerCert()
	tests := []struct {
		name     string
		c        *client
		method   string
		path     string
		body     any
		want     int
		wantCode string
	}{
		{"no credentials", anon, "GET", "/v1/bdbs", nil, 401, "unauthorized"},
		{"wrong password", wrong, "GET", "/v1/bdbs", nil, 401, "unauthorized"},
		{"unknown user", stranger, "GET", "/v1/cluster", nil, 401, "unauthorized"},
		{"no credentials on an unknown route", anon, "GET", "/v1/nothing", nil, 401, "unauthorized"},
		{"viewer reads databases", viewer, "GET", "/v1/bdbs/1", nil, 200, ""},
		{"viewer reads the cluster", viewer, "GET", "/v1/cluster", nil, 200, ""},
		{"viewer may not update a database", viewer, "PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`, 403, "insufficient_permissions"},
		{"viewer may not dry-run an update", viewer, "PUT", "/v1/bdbs/1?dry_run=true", `{"tls_mode":"replica_ssl"}`, 403, "insufficient_permissions"},
		{"viewer may not replace a certificate", viewer, "PUT", "/v1/cluster/update_cert",
			map[string]string{"name": "syncer", "certificate": cert, "key": key}, 403, "insufficient_permissions"},
		{"viewer may not read private keys", viewer, "GET", "/v1/cluster/certificates", nil, 403, "insufficient_permissions"},
		{"admin reads private keys", admin, "GET", "/v1/cluster/certificates", nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dbOf(t, east, 1)
			tt.c.t = t
			status, b := tt.c.do(tt.method, tt.path, tt.body)
			if status != tt.want {
				t.Fatalf("status %d, want %d; body %s", status, tt.want, b)
			}
			if tt.wantCode != "" {
				var e apiErr
				if err := json.Unmarshal(b, &e); err != nil || e.Code != tt.wantCode || e.Description == "" {
					t.Fatalf("body %s: want error_code %q and a description", b, tt.wantCode)
				}
			}
			if diff := cmp.Diff(before, dbOf(t, east, 1)); diff != "" {
				t.Errorf("database changed (-before +after):\n%s", diff)
			}
			if got := east.Stats(); got != (Stats{}) {
				t.Errorf("source cluster link stats %+v, want zero", got)
			}
		})
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	tests := []struct {
		method, path string
		want         int
		wantCode     string
	}{
		{"GET", "/v1/bdbs/99", 404, "bdb_not_exist"},
		{"GET", "/v1/bdbs/abc", 404, "bdb_not_exist"},
		{"GET", "/v1/bdbs/01", 404, "bdb_not_exist"},
		{"GET", "/v1/bdbs/-1", 404, "bdb_not_exist"},
		{"PUT", "/v1/bdbs/99", 404, "bdb_not_exist"},
		{"GET", "/v1/actions/no-such-action", 404, "action_not_exist"},
		{"GET", "/v1/actions/bdb/99", 404, "bdb_not_exist"},
		{"GET", "/v1/nothing", 404, "not_found"},
		{"GET", "/v1/bdbs/1/shards", 404, "not_found"},
		{"POST", "/v1/bdbs", 405, "method_not_allowed"},
		{"DELETE", "/v1/bdbs/1", 405, "method_not_allowed"},
		{"POST", "/v1/cluster/update_cert", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			c.t = t
			var e apiErr
			c.want(tt.want, tt.method, tt.path, `{}`, &e)
			if e.Code != tt.wantCode {
				t.Errorf("error_code %q, want %q", e.Code, tt.wantCode)
			}
		})
	}
	t.Run("405 names the allowed methods", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, east.URL+"/v1/bdbs/1", nil)
		req.SetBasicAuth(east.AdminUser, east.AdminPassword)
		resp, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Allow"); got != "GET, PUT" {
			t.Errorf("Allow %q, want \"GET, PUT\"", got)
		}
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q", got)
		}
	})
}

func TestErrorMessageField(t *testing.T) {
	s := startSim(t, demo(t), Options{ErrorMessageField: "message"})
	c := adminClient(t, s.Cluster("east"))
	var e apiErr
	c.want(404, "GET", "/v1/bdbs/99", nil, &e)
	if e.Message == "" || e.Description != "" {
		t.Errorf("error body %+v: want message and no description", e)
	}
	if _, err := New(demo(t), Options{ErrorMessageField: "text"}); err == nil {
		t.Error("New accepted ErrorMessageField \"text\"")
	}
}

func TestDatabaseObject(t *testing.T) {
	_, east, west := startDemo(t, Options{})
	c := adminClient(t, west)
	var m map[string]any
	c.want(200, "GET", "/v1/bdbs/1", nil, &m)
	// Fields our client does not model must be there, as on a real cluster.
	for _, k := range []string{"port", "memory_size", "type", "version", "authentication_ssl_crdt_certs",
		"authentication_admin_pass", "mtls_allow_outdated_certs", "replica_sync", "ssl", "endpoints", "status"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if _, ok := m["action_uid"]; ok {
		t.Error("action_uid present while no action runs")
	}
	var d tDB
	c.want(200, "GET", "/v1/bdbs/1", nil, &d)
	want := tDB{
		UID: 1, Name: "orders-replica", Status: "active", TLSMode: "disabled", EnforceClientAuthentication: "disabled",
		AuthenticationSSLClientCerts: []tCert{}, ReplicaSync: "enabled",
		Endpoints: []tEnpoint{{DNSName: "redis-12001.west.redis.local", Port: 12001, Addr: []string{"127.0.0.1"}}},
		ReplicaSources: []tSource{{UID: 1, URI: "redis://admin:orders-demo-password@redis-12000.east.redis.local:12000",
			Status: "in-sync"}},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("west db 1 (-want +got):\n%s", diff)
	}
	var list []tDB
	adminClient(t, east).want(200, "GET", "/v1/bdbs", nil, &list)
	if len(list) != 1 || list[0].Name != "orders" || list[0].ReplicaSync != "disabled" {
		t.Errorf("east databases %+v", list)
	}
}

func TestFieldsFilter(t *testing.T) {
	_, _, west := startDemo(t, Options{})
	c := adminClient(t, west)
	tests := []struct {
		query string
		want  []string
	}{
		{"?fields=uid,tls_mode", []string{"tls_mode", "uid"}},
		{"?fields=uid&fields=replica_sources", []string{"replica_sources", "uid"}},
		{"?fields=uid,no_such_field", []string{"uid"}},
		{"?fields=%20uid%20,,name", []string{"name", "uid"}},
	}
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			c.t = t
			var one map[string]any
			c.want(200, "GET", "/v1/bdbs/1"+tt.query, nil, &one)
			if diff := cmp.Diff(tt.want, keys(one)); diff != "" {
				t.Errorf("GET /v1/bdbs/1 keys (-want +got):\n%s", diff)
			}
			var list []map[string]any
			c.want(200, "GET", "/v1/bdbs"+tt.query, nil, &list)
			if len(list) != 1 {
				t.Fatalf("%d databases", len(list))
			}
			if diff := cmp.Diff(tt.want, keys(list[0])); diff != "" {
				t.Errorf("GET /v1/bdbs keys (-want +got):\n%s", diff)
			}
		})
	}
}

// stateOf captures everything observable about the simulator, to prove that a call changed nothing.
type simState struct {
	DBs              map[string]json.RawMessage
	Syncer, Proxy    map[string]string
	Stats            map[string]Stats
	Actions          map[string]int
	APICertByCluster map[string]string
}

func stateOf(t *testing.T, s *Sim) simState {
	t.Helper()
	st := simState{DBs: map[string]json.RawMessage{}, Syncer: map[string]string{}, Proxy: map[string]string{},
		Stats: map[string]Stats{}, Actions: map[string]int{}, APICertByCluster: map[string]string{}}
	for _, info := range s.Clusters() {
		h := s.Cluster(info.Name)
		for _, uid := range []int{1} {
			raw, err := h.DB(uid)
			if err != nil {
				t.Fatal(err)
			}
			st.DBs[fmt.Sprintf("%s/%d", info.Name, uid)] = raw
		}
		st.Syncer[info.Name], _ = h.SyncerCert()
		st.Proxy[info.Name], _ = h.ProxyCert()
		st.Stats[info.Name] = h.Stats()
		s.mu.Lock()
		st.Actions[info.Name] = len(h.c.actions)
		s.mu.Unlock()
		st.APICertByCluster[info.Name] = info.APICertPEM
	}
	return st
}

func TestPutValidation(t *testing.T) {
	s, east, west := startDemo(t, Options{})
	c := adminClient(t, west)
	fresh, fresh2, expired := freshCert(t, "west.redis.local"), freshCert(t, "other.redis.local"), expiredCert(t, "old.redis.local")
	proxy, _ := east.ProxyCert()
	uri := linkOf(t, west, 1).URI
	certList := func(pems ...string) map[string]any {
		l := []map[string]string{}
		for _, p := range pems {
			l = append(l, map[string]string{"client_cert": p})
		}
		return map[string]any{"authentication_ssl_client_certs": l}
	}
	sources := func(entries ...map[string]any) map[string]any {
		return map[string]any{"replica_sources": entries}
	}
	tooMany := make([]map[string]any, 33)
	for i := range tooMany {
		tooMany[i] = map[string]any{"uri": fmt.Sprintf("redis://admin:x@redis-%d.east.redis.local:%d", 13000+i, 13000+i)}
	}
	tests := []struct {
		name     string
		query    string
		body     any
		want     int
		wantCode string
	}{
		{"invalid JSON", "", `{"tls_mode":`, 400, "invalid_schema"},
		{"not an object", "", `["tls_mode"]`, 400, "invalid_schema"},
		{"null", "", `null`, 400, "invalid_schema"},
		{"trailing data", "", `{} {}`, 400, "invalid_schema"},
		{"unknown field", "", `{"tls_mode":"enabled","memory_sise":1}`, 400, "invalid_schema"},
		{"read-only field", "", `{"uid":1}`, 400, "invalid_schema"},
		{"deprecated ssl", "", `{"ssl":true}`, 400, "invalid_schema"},
		{"tls_mode unknown", "", `{"tls_mode":"on"}`, 400, "invalid_schema"},
		{"tls_mode null", "", `{"tls_mode":null}`, 400, "invalid_schema"},
		{"tls_mode not a string", "", `{"tls_mode":true}`, 400, "invalid_schema"},
		{"enforce_client_authentication unknown", "", `{"enforce_client_authentication":"yes"}`, 400, "invalid_schema"},
		{"mtls_allow_outdated_certs not a bool", "", `{"mtls_allow_outdated_certs":"false"}`, 400, "invalid_schema"},
		{"dry_run not a bool", "?dry_run=maybe", `{}`, 400, "invalid_schema"},
		{"client certs not a list", "", `{"authentication_ssl_client_certs":"x"}`, 400, "invalid_schema"},
		{"client cert entry with an extra key", "", map[string]any{"authentication_ssl_client_certs": []map[string]string{
			{"client_cert": fresh.CertPEM, "note": "x"}}}, 400, "invalid_schema"},
		{"client cert garbage", "", certList("not a certificate"), 400, "invalid_certificate"},
		{"client cert empty", "", certList(""), 400, "invalid_certificate"},
		{"client cert is a private key", "", certList(fresh.KeyPEM), 400, "invalid_certificate"},
		{"client cert is a CSR", "", certList(csrPEM(t)), 400, "invalid_certificate"},
		{"client cert with its key appended", "", certList(fresh.CertPEM + fresh.KeyPEM), 400, "invalid_certificate"},
		{"two certificates in one entry", "", certList(fresh.CertPEM + fresh2.CertPEM), 400, "invalid_certificate"},
		{"text around the certificate", "", certList("subject=CN x\n" + fresh.CertPEM), 400, "invalid_certificate"},
		{"truncated certificate", "", certList(fresh.CertPEM[:len(fresh.CertPEM)/2]), 400, "invalid_certificate"},
		{"expired client cert", "", certList(fresh.CertPEM, expired.CertPEM), 406, "certificate_expired"},
		{"the same cert twice", "", certList(fresh.CertPEM, fresh2.CertPEM, fresh.CertPEM), 400, "duplicated_certs"},
		{"the same cert twice, formatted differently", "", certList(fresh.CertPEM, strings.ReplaceAll(fresh.CertPEM, "\n", "\r\n")), 400, "duplicated_certs"},
		{"expired crdt cert", "", map[string]any{"authentication_ssl_crdt_certs": []map[string]string{{"client_cert": expired.CertPEM}}}, 406, "certificate_expired"},
		{"more than 32 replica sources", "", sources(tooMany...), 400, "invalid_schema"},
		{"rediss uri", "", sources(map[string]any{"uid": 1, "uri": strings.Replace(uri, "redis://", "rediss://", 1)}), 400, "invalid_schema"},
		{"http uri", "", sources(map[string]any{"uid": 1, "uri": "http://redis-12000.east.redis.local:12000"}), 400, "invalid_schema"},
		{"uri without port", "", sources(map[string]any{"uid": 1, "uri": "redis://admin:x@redis-12000.east.redis.local"}), 400, "invalid_schema"},
		{"uri with a path", "", sources(map[string]any{"uid": 1, "uri": uri + "/0"}), 400, "invalid_schema"},
		{"missing uri", "", sources(map[string]any{"uid": 1}), 400, "invalid_schema"},
		{"uid zero", "", sources(map[string]any{"uid": 0, "uri": uri}), 400, "invalid_schema"},
		{"uid not an integer", "", sources(map[string]any{"uid": "1", "uri": uri}), 400, "invalid_schema"},
		{"uid that does not exist", "", sources(map[string]any{"uid": 7, "uri": uri}), 400, "invalid_schema"},
		{"uid listed twice", "", sources(map[string]any{"uid": 1, "uri": uri}, map[string]any{"uid": 1, "uri": strings.Replace(uri, "12000", "12002", 2)}), 400, "invalid_schema"},
		{"same source twice", "", sources(map[string]any{"uid": 1, "uri": uri}, map[string]any{"uri": uri}), 400, "invalid_schema"},
		{"unknown key in an entry", "", sources(map[string]any{"uid": 1, "uri": uri, "encrypt": true}), 400, "invalid_schema"},
		{"compression out of range", "", sources(map[string]any{"uid": 1, "uri": uri, "compression": 9}), 400, "invalid_schema"},
		{"encryption with a garbage server_cert", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true, "server_cert": "garbage"}), 400, "invalid_certificate"},
		{"encryption with a key as server_cert", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true, "server_cert": fresh.KeyPEM}), 400, "invalid_certificate"},
		{"encryption without server_cert", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true}), 400, "invalid_certificate"},
		{"expired server_cert", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true, "server_cert": expired.CertPEM}), 406, "certificate_expired"},
		{"client_cert without client_key", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true, "server_cert": proxy, "client_cert": fresh.CertPEM}), 400, "invalid_certificate"},
		{"client_cert with another key", "", sources(map[string]any{"uid": 1, "uri": uri, "encryption": true, "server_cert": proxy, "client_cert": fresh.CertPEM, "client_key": fresh2.KeyPEM}), 400, "invalid_certificate"},
		{"client_key without client_cert", "", sources(map[string]any{"uid": 1, "uri": uri, "client_key": fresh.KeyPEM}), 400, "invalid_certificate"},
		{"invalid body on a dry run", "?dry_run=true", certList("garbage"), 400, "invalid_certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			before := stateOf(t, s)
			status, b := c.do("PUT", "/v1/bdbs/1"+tt.query, tt.body)
			var e apiErr
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if status != tt.want || e.Code != tt.wantCode {
				t.Fatalf("status %d error_code %q (%s), want %d %q", status, e.Code, e.Description, tt.want, tt.wantCode)
			}
			for _, secret := range []string{"-----BEGIN", "orders-demo-password", fresh.KeyPEM[40:80], fresh.CertPEM[40:80]} {
				if strings.Contains(string(b), secret) {
					t.Errorf("error body quotes secret or certificate material %q: %s", secret, b)
				}
			}
			if diff := cmp.Diff(before, stateOf(t, s)); diff != "" {
				t.Errorf("a rejected PUT changed state (-before +after):\n%s", diff)
			}
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	s, east, west := startDemo(t, Options{})
	proxy, _ := east.ProxyCert()
	wsyncer, _ := west.SyncerCert()
	src := linkOf(t, west, 1)
	tests := []struct {
		name    string
		cluster *ClusterHandle
		body    map[string]any
		check   func(t *testing.T, d tDB)
	}{
		{"source: TLS and trust", east, map[string]any{
			"tls_mode": "replica_ssl", "enforce_client_authentication": "enabled",
			"authentication_ssl_client_certs": []map[string]string{{"client_cert": wsyncer}},
		}, func(t *testing.T, d tDB) {
			if d.TLSMode != "replica_ssl" || d.EnforceClientAuthentication != "enabled" || len(d.AuthenticationSSLClientCerts) != 1 {
				t.Errorf("would-be db %+v does not show the change", d)
			}
		}},
		{"destination: encryption on the existing entry and a new entry", west, map[string]any{
			"replica_sources": []map[string]any{
				{"uid": src.UID, "uri": src.URI, "encryption": true, "server_cert": proxy},
				{"uri": "redis://admin:x@redis-12999.east.redis.local:12999"},
			},
		}, func(t *testing.T, d tDB) {
			if len(d.ReplicaSources) != 2 || !d.ReplicaSources[0].Encryption || d.ReplicaSources[1].UID != 2 {
				t.Errorf("would-be sources %+v", d.ReplicaSources)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := adminClient(t, tt.cluster)
			before := stateOf(t, s)
			var d tDB
			c.want(200, "PUT", "/v1/bdbs/1?dry_run=true", tt.body, &d)
			tt.check(t, d)
			if d.Status != "active" || d.ActionUID != "" {
				t.Errorf("dry run shows status %q action %q, want active and no action", d.Status, d.ActionUID)
			}
			if diff := cmp.Diff(before, stateOf(t, s)); diff != "" {
				t.Errorf("dry run changed state (-before +after):\n%s", diff)
			}
		})
	}
}

type tAction struct {
	ActionUID string  `json:"action_uid"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Progress  float64 `json:"progress"`
}

func TestChangeLifecycle(t *testing.T) {
	_, east, _ := startDemo(t, Options{}) // actions wait for CompleteActions
	c := adminClient(t, east)
	var d tDB
	c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`, &d)
	if d.Status != "active-change-pending" || d.ActionUID == "" || d.TLSMode != "replica_ssl" {
		t.Fatalf("PUT answered %+v, want the new config, active-change-pending and an action_uid", d)
	}
	first := d.ActionUID
	var a tAction
	c.want(200, "GET", "/v1/actions/"+first, nil, &a)
	if diff := cmp.Diff(tAction{ActionUID: first, Name: "SMUpdateBDB", Status: "active"}, a); diff != "" {
		t.Errorf("running action (-want +got):\n%s", diff)
	}
	var got tDB
	c.want(200, "GET", "/v1/bdbs/1", nil, &got)
	if got.Status != "active-change-pending" || got.ActionUID != first {
		t.Errorf("GET while pending: status %q action %q", got.Status, got.ActionUID)
	}

	var e apiErr
	c.want(409, "PUT", "/v1/bdbs/1", `{"enforce_client_authentication":"enabled"}`, &e)
	if e.Code != "busy" {
		t.Errorf("error_code %q, want busy", e.Code)
	}
	c.want(409, "PUT", "/v1/bdbs/1?dry_run=true", `{"enforce_client_authentication":"enabled"}`, &e)
	c.want(400, "PUT", "/v1/bdbs/1", `{"tls_mode":"bogus"}`, &e) // validation first: never retried forever

	if n := east.CompleteActions(); n != 1 {
		t.Fatalf("CompleteActions completed %d actions, want 1", n)
	}
	c.want(200, "GET", "/v1/actions/"+first, nil, &a)
	if a.Status != "completed" || a.Progress != 100 {
		t.Errorf("completed action %+v", a)
	}
	got = tDB{}
	c.want(200, "GET", "/v1/bdbs/1", nil, &got)
	if got.Status != "active" || got.ActionUID != "" || got.EnforceClientAuthentication != "disabled" {
		t.Errorf("after completion %+v: want active, no action, and the 409'd change not applied", got)
	}

	c.want(200, "PUT", "/v1/bdbs/1", `{"enforce_client_authentication":"enabled"}`, &d)
	second := d.ActionUID
	if second == first || second == "" {
		t.Errorf("second action uid %q (first %q)", second, first)
	}
	var list []tAction
	c.want(200, "GET", "/v1/actions/bdb/1", nil, &list)
	if len(list) != 2 || list[0].ActionUID != first || list[0].Status != "completed" ||
		list[1].ActionUID != second || list[1].Status != "active" {
		t.Errorf("actions of db 1: %+v", list)
	}
}

func TestActionCompletesOnItsOwn(t *testing.T) {
	s := startSim(t, demo(t), Options{ActionDuration: 20 * time.Millisecond})
	east := s.Cluster("east")
	c := adminClient(t, east)
	var d tDB
	c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"enabled"}`, &d)
	if d.Status != "active-change-pending" {
		t.Fatalf("status %q right after the PUT", d.Status)
	}
	waitFor(t, "the action to complete", func() bool {
		var a tAction
		c.want(200, "GET", "/v1/actions/"+d.ActionUID, nil, &a)
		if a.Status != "active" && a.Status != "completed" {
			t.Fatalf("action status %q", a.Status)
		}
		return a.Status == "completed"
	})
	var got tDB
	c.want(200, "GET", "/v1/bdbs/1", nil, &got)
	if got.Status != "active" || got.TLSMode != "enabled" {
		t.Errorf("after the action: %+v", got)
	}
}

func TestReplicaSourceRoundTrip(t *testing.T) {
	_, _, west := startDemo(t, Options{})
	c := adminClient(t, west)
	if err := west.MutateDB(1, func(cfg *DBConfig) { cfg.ReplicaSources[0].Compression = 3 }); err != nil {
		t.Fatal(err)
	}
	// What a careful client does: send back every entry exactly as read, status fields and all.
	var raw map[string]json.RawMessage
	c.want(200, "GET", "/v1/bdbs/1?fields=replica_sources", nil, &raw)
	c.want(200, "PUT", "/v1/bdbs/1", map[string]json.RawMessage{"replica_sources": raw["replica_sources"]}, nil)
	west.CompleteActions()
	l := linkOf(t, west, 1)
	if l.UID != 1 || l.Compression != 3 || l.Status != "in-sync" {
		t.Errorf("after sending the entry back: %+v, want uid 1, compression 3, in-sync", l)
	}
	if got := west.Stats(); got.FullResyncs != 0 || got.LinkRestarts != 0 {
		t.Errorf("stats %+v: an unchanged entry must not restart or resync", got)
	}

	// Dropping a field resets it: the whole list is replaced.
	c.want(200, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{{"uid": 1, "uri": l.URI}}}, nil)
	west.CompleteActions()
	if l := linkOf(t, west, 1); l.Compression != 0 {
		t.Errorf("compression %d after an entry without it, want 0", l.Compression)
	}
	if got := west.Stats(); got.FullResyncs != 0 || got.LinkRestarts != 0 {
		t.Errorf("stats %+v after a compression-only change", got)
	}

	// Without uid: a new link, a full resync.
	c.want(200, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{{"uri": l.URI}}}, nil)
	west.CompleteActions()
	if l := linkOf(t, west, 1); l.UID != 2 || l.Status != "in-sync" {
		t.Errorf("re-created link %+v, want uid 2 in-sync", l)
	}
	if got := west.Stats(); got.FullResyncs != 1 {
		t.Errorf("FullResyncs %d, want 1", got.FullResyncs)
	}

	// An empty list removes the link.
	var d tDB
	c.want(200, "PUT", "/v1/bdbs/1", `{"replica_sources":[]}`, nil)
	west.CompleteActions()
	c.want(200, "GET", "/v1/bdbs/1", nil, &d)
	if len(d.ReplicaSources) != 0 || d.ReplicaSync != "disabled" {
		t.Errorf("after removing the entry: sources %+v replica_sync %q", d.ReplicaSources, d.ReplicaSync)
	}
}
