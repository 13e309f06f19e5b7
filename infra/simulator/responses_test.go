package simulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
)

func TestEmptyNext(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	east.EmptyNext(routeGetDB, 2)
	east.EmptyNext(routePutDB, 1)
	for range 2 {
		if status, b := c.do("GET", "/v1/bdbs/1", nil); status != 200 || len(b) != 0 {
			t.Errorf("GET: status %d, body %q; want 200 and no body", status, b)
		}
	}
	var d tDB
	c.want(200, "GET", "/v1/bdbs/1", nil, &d) // the third answer has a body again
	if d.UID != 1 {
		t.Errorf("third GET: %+v", d)
	}
	// An empty answer to a PUT still applies it.
	if status, b := c.do("PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`); status != 200 || len(b) != 0 {
		t.Errorf("PUT: status %d, body %q; want 200 and no body", status, b)
	}
	if got := dbOf(t, east, 1); got.TLSMode != "replica_ssl" || got.Status != "active-change-pending" {
		t.Errorf("after an empty PUT answer: tls_mode %q status %q", got.TLSMode, got.Status)
	}
	// Only successful answers are emptied: an error keeps its body.
	east.EmptyNext(AnyRoute, 1)
	var e apiErr
	c.want(404, "GET", "/v1/bdbs/9", nil, &e)
	if e.Code != "bdb_not_exist" {
		t.Errorf("404 body: %+v", e)
	}
	if status, b := c.do("GET", "/v1/cluster", nil); status != 200 || len(b) != 0 {
		t.Errorf("AnyRoute: status %d, body %q", status, b)
	}
}

func TestSetPadding(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	const n = 5000
	east.SetPadding("GET /v1/bdbs", n)
	var list []map[string]any
	c.want(200, "GET", "/v1/bdbs?fields=uid", nil, &list)
	if len(list) != 1 {
		t.Fatalf("got %d dbs", len(list))
	}
	if p, _ := list[0][paddingField].(string); len(p) != n || list[0]["uid"] != float64(1) {
		t.Errorf("padded db: uid %v, padding %d bytes; want uid 1 and %d bytes", list[0]["uid"], len(p), n)
	}
	var one map[string]any
	c.want(200, "GET", "/v1/bdbs/1", nil, &one)
	if _, ok := one[paddingField]; ok {
		t.Errorf("another route was padded")
	}
	east.SetPadding("GET /v1/bdbs", 0)
	var plain []map[string]any
	c.want(200, "GET", "/v1/bdbs?fields=uid", nil, &plain)
	if diff := cmp.Diff([]map[string]any{{"uid": float64(1)}}, plain); diff != "" {
		t.Errorf("after removing the padding (-want +got):\n%s", diff)
	}
}

func TestPartialCertUpdates(t *testing.T) {
	for _, path := range []string{"/v1/cluster/certificates", "/v1/cluster/update_cert"} {
		t.Run(path, func(t *testing.T) {
			_, east, _ := startDemo(t, Options{})
			c := adminClient(t, east)
			body := func(kp certs.KeyPair) any {
				one := map[string]string{"name": "syncer", "certificate": kp.CertPEM, "key": kp.KeyPEM}
				if path == "/v1/cluster/certificates" {
					return map[string]any{"certificates": []any{one}}
				}
				return one
			}
			east.PartialCertUpdates(2)
			// An invalid update is refused as always and uses up no 409.
			var e apiErr
			c.want(406, "PUT", path, body(expiredCert(t, "east.redis.local")), &e)
			first := freshCert(t, "east.redis.local")
			for i := range 2 {
				c.want(409, "PUT", path, body(first), &e)
				if e.Code != "nodes_not_updated" || !strings.Contains(e.Description, "not all nodes have been updated") {
					t.Errorf("409 #%d: %+v", i+1, e)
				}
				// Partially applied: the certificate is in place all the same.
				if got, _ := east.SyncerCert(); !certs.SameCert(got, first.CertPEM) {
					t.Errorf("409 #%d: the syncer certificate was not installed", i+1)
				}
			}
			c.want(200, "PUT", path, body(first), nil) // the same update again, after the 409s
			if got := east.Calls()["PUT "+path]; got != 4 {
				t.Errorf("PUT %s counted %d times, want 4", path, got)
			}
		})
	}
}

func TestFailNextActions(t *testing.T) {
	const text = "the database change could not be applied (failure injected by the simulator)"
	tests := []struct {
		shape ActionFailure
		want  map[string]any // the failure fields of the action
	}{
		{ActionFailError, map[string]any{"error": text}},
		{ActionFailErrorCode, map[string]any{"error_code": "internal_error", "error_message": text}},
		{ActionFailAdditionalInfo, map[string]any{"additional_info": map[string]any{"error": text, "object_type": "bdb", "object_uid": "1"}}},
	}
	for _, tc := range tests {
		t.Run(string(tc.shape), func(t *testing.T) {
			_, east, _ := startDemo(t, Options{})
			c := adminClient(t, east)
			if err := east.FailNextActions(1, tc.shape); err != nil {
				t.Fatal(err)
			}
			var d tDB
			c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`, &d)
			if d.ActionUID == "" || d.Status != "active-change-pending" {
				t.Fatalf("PUT answer: %+v", d)
			}
			var running map[string]any
			c.want(200, "GET", "/v1/actions/"+d.ActionUID, nil, &running)
			if running["status"] != "active" {
				t.Errorf("before completion: status %v", running["status"])
			}
			east.CompleteActions()
			var a map[string]any
			c.want(200, "GET", "/v1/actions/"+d.ActionUID, nil, &a)
			if a["status"] != "failed" {
				t.Errorf("status %v, want failed", a["status"])
			}
			got := map[string]any{}
			for _, k := range []string{"error", "error_code", "error_message", "additional_info"} {
				if v, ok := a[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("failure fields (-want +got):\n%s", diff)
			}
			// The change is not applied, and the database is free for the next one.
			if now := dbOf(t, east, 1); now.TLSMode != "disabled" || now.Status != "active" {
				t.Errorf("after the failed action: tls_mode %q status %q", now.TLSMode, now.Status)
			}
			c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"replica_ssl"}`, &d)
			east.CompleteActions()
			c.want(200, "GET", "/v1/actions/"+d.ActionUID, nil, &a)
			if a["status"] != "completed" || dbOf(t, east, 1).TLSMode != "replica_ssl" {
				t.Errorf("the next action: status %v, want completed and applied", a["status"])
			}
		})
	}
	t.Run("unknown shape", func(t *testing.T) {
		_, east, _ := startDemo(t, Options{})
		if err := east.FailNextActions(1, "message"); err == nil || !strings.Contains(err.Error(), `shape "message"`) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSetUnreachable(t *testing.T) {
	_, east, west := startDemo(t, Options{})
	kept := adminClient(t, east) // keeps its connection alive across the outage
	kept.want(200, "GET", "/v1/cluster", nil, nil)
	fresh := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, east.APICertPEM, false)}
	east.ResetCalls()
	east.SetUnreachable(true)
	for name, c := range map[string]*client{"new connection": fresh, "kept-alive connection": kept} {
		if status, _, err := c.try("GET", "/v1/cluster", nil); err == nil {
			t.Errorf("%s: answered %d while unreachable", name, status)
		}
	}
	if got := east.TotalCalls(); got != 0 {
		t.Errorf("%d calls counted while unreachable", got)
	}
	adminClient(t, west).want(200, "GET", "/v1/cluster", nil, nil) // other clusters unaffected
	east.SetUnreachable(false)
	fresh.want(200, "GET", "/v1/cluster", nil, nil)
}

func TestPadHelper(t *testing.T) {
	tests := []struct {
		in   any
		want any
	}{
		{map[string]any{"a": 1}, map[string]any{"a": 1, paddingField: "xxx"}},
		{[]map[string]any{{"a": 1}, {"b": 2}}, []map[string]any{{"a": 1, paddingField: "xxx"}, {"b": 2, paddingField: "xxx"}}},
		{map[string]string{"a": "b"}, map[string]string{"a": "b"}}, // other shapes stay as they are
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, pad(tc.in, 3)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	orig := map[string]any{"a": 1}
	_ = pad(orig, 3)
	if _, ok := orig[paddingField]; ok {
		t.Errorf("pad changed its input")
	}
	b, _ := json.Marshal(pad(map[string]any{}, 0))
	if string(b) != "{}" {
		t.Errorf("n = 0 pads nothing: %s", b)
	}
}
