package simulator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	routeGetDB = "GET /v1/bdbs/{uid}"
	routePutDB = "PUT /v1/bdbs/{uid}"
)

func TestCounters(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	c.want(200, "GET", "/v1/bdbs/1", nil, nil)
	c.want(200, "GET", "/v1/bdbs/1?fields=uid", nil, nil)
	c.want(200, "GET", "/v1/bdbs", nil, nil)
	c.want(200, "PUT", "/v1/bdbs/1?dry_run=true", `{}`, nil)
	c.want(404, "GET", "/v1/bdbs/9", nil, nil)
	c.want(404, "GET", "/v1/nope", nil, nil)
	c.want(405, "POST", "/v1/bdbs", `{}`, nil)
	(&client{t: t, base: east.URL, hc: c.hc}).want(401, "GET", "/v1/cluster", nil, nil)
	want := map[string]int{
		routeGetDB: 3, "GET /v1/bdbs": 1, routePutDB: 1, routePutDB + DryRunSuffix: 1, "GET (no route)": 1, "POST /v1/bdbs": 1, "GET /v1/cluster": 1,
	}
	if diff := cmp.Diff(want, east.Calls()); diff != "" {
		t.Errorf("Calls (-want +got):\n%s", diff)
	}
	if got := east.TotalCalls(); got != 8 {
		t.Errorf("TotalCalls %d, want 8", got)
	}
	east.ResetCalls()
	if got := east.TotalCalls(); got != 0 || len(east.Calls()) != 0 {
		t.Errorf("after ResetCalls: total %d, calls %v", got, east.Calls())
	}
}

func TestLatency(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	const latency = 80 * time.Millisecond
	east.SetLatency(latency)
	start := time.Now()
	c.want(200, "GET", "/v1/cluster", nil, nil)
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("call took %s, want at least the injected %s", elapsed, latency)
	}
	east.SetLatency(0)
	c.want(200, "GET", "/v1/cluster", nil, nil)
}

func TestFailNext(t *testing.T) {
	tests := []struct {
		name     string
		route    string
		status   int
		wantCode string
	}{
		{"busy on PUT", routePutDB, http.StatusConflict, "busy"},
		{"node down on PUT", routePutDB, http.StatusServiceUnavailable, "node_not_responding"},
		{"any route", AnyRoute, http.StatusInternalServerError, "injected_fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, east, _ := startDemo(t, Options{})
			c := adminClient(t, east)
			east.FailNext(tt.route, 2, tt.status)
			before := stateOf(t, s)
			for range 2 {
				var e apiErr
				c.want(tt.status, "PUT", "/v1/bdbs/1", `{"tls_mode":"enabled"}`, &e)
				if e.Code != tt.wantCode {
					t.Errorf("error_code %q, want %q", e.Code, tt.wantCode)
				}
			}
			if diff := cmp.Diff(before, stateOf(t, s)); diff != "" {
				t.Errorf("a failed call changed state (-before +after):\n%s", diff)
			}
			c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"enabled"}`, nil)
			if got := east.Calls()[routePutDB]; got != 3 {
				t.Errorf("PUT counted %d times, want 3", got)
			}
		})
	}
	t.Run("other routes unaffected", func(t *testing.T) {
		_, east, _ := startDemo(t, Options{})
		c := adminClient(t, east)
		east.FailNext(routePutDB, 1, 503)
		c.want(200, "GET", "/v1/bdbs/1", nil, nil)
		c.want(503, "PUT", "/v1/bdbs/1", `{}`, nil)
	})
}

func TestDropNext(t *testing.T) {
	s, east, _ := startDemo(t, Options{})
	// A fresh connection per call, so net/http cannot transparently retry a dropped idempotent request.
	c := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, east.APICertPEM, false)}
	east.DropNext(routePutDB, 1)
	before := stateOf(t, s)
	if status, _, err := c.try("PUT", "/v1/bdbs/1", `{"tls_mode":"enabled"}`); err == nil {
		t.Fatalf("dropped call answered %d", status)
	}
	if diff := cmp.Diff(before, stateOf(t, s)); diff != "" {
		t.Errorf("a dropped call changed state (-before +after):\n%s", diff)
	}
	east.DropNext(AnyRoute, 1)
	if _, _, err := c.try("GET", "/v1/cluster", nil); err == nil {
		t.Fatal("dropped GET answered")
	}
	c.want(200, "PUT", "/v1/bdbs/1", `{"tls_mode":"enabled"}`, nil)
	if got := east.Calls()[routePutDB]; got != 2 {
		t.Errorf("PUT counted %d times, want 2", got)
	}
}

func TestErrorRate(t *testing.T) {
	outcomes := func(t *testing.T, seed uint64) []int {
		t.Helper()
		_, east, _ := startDemo(t, Options{Seed: seed})
		east.SetErrorRate(routeGetDB, 0.5, http.StatusServiceUnavailable)
		c := adminClient(t, east)
		var out []int
		for range 40 {
			status, _ := c.do("GET", "/v1/bdbs/1", nil)
			out = append(out, status)
		}
		c.want(200, "GET", "/v1/cluster", nil, nil) // other routes unaffected
		east.SetErrorRate(routeGetDB, 0, 0)
		c.want(200, "GET", "/v1/bdbs/1", nil, nil)
		return out
	}
	a, b := outcomes(t, 7), outcomes(t, 7)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different outcomes (-first +second):\n%s", diff)
	}
	count := map[int]int{}
	for _, s := range a {
		count[s]++
	}
	if count[200] == 0 || count[503] == 0 || count[200]+count[503] != 40 {
		t.Errorf("outcomes %v: want a mix of 200 and 503 only", count)
	}
}

func TestClearFaults(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	east.FailNext(AnyRoute, 5, 500)
	east.DropNext(AnyRoute, 5)
	east.SetErrorRate(AnyRoute, 1, 500)
	east.SetLatency(time.Hour)
	east.ClearFaults()
	var cl map[string]json.RawMessage
	adminClient(t, east).want(200, "GET", "/v1/cluster", nil, &cl)
}
