package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// routes answers by path; each path walks through its list of answers, repeating the last one.
func routes(answers map[string][]answer) respond {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		list := answers[r.URL.EscapedPath()]
		i := seen[r.URL.EscapedPath()]
		seen[r.URL.EscapedPath()]++
		mu.Unlock()
		if len(list) == 0 {
			writeJSON(w, 404, `{"error_code":"not_found"}`)
			return
		}
		a := list[min(i, len(list)-1)]
		writeJSON(w, a.status, a.body)
	}
}

type answer struct {
	status int
	body   string
}

func action(status string) answer {
	return answer{200, fmt.Sprintf(`{"action_uid":"act-1","name":"SMUpdateBDB","status":%q,"progress":50}`, status)}
}

func dbStatus(status string) answer {
	return answer{200, fmt.Sprintf(`{"uid":7,"name":"src","status":%q,"tls_mode":"replica_ssl"}`, status)}
}

func paths(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Path)
	}
	return out
}

// simulatedClock makes c.now advance by exactly what c asked to sleep.
func simulatedClock(c *Client, h *hooks) time.Time {
	base := time.Now()
	c.now = func() time.Time {
		var slept time.Duration
		for _, d := range h.slept() {
			slept += d
		}
		return base.Add(slept)
	}
	return base
}

func TestWaitForDB(t *testing.T) {
	const (
		a  = "/v1/actions/act-1"
		db = "/v1/bdbs/7"
	)
	rep := func(s string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		name       string
		actionUID  string
		answers    map[string][]answer
		deadline   time.Duration // simulated, polls every minute; default one day
		wantPaths  []string
		wantStatus string // of the returned DB
		wantErr    string
		wantAPI    int  // status of the *reapi.Error errors.As must find, 0 = none expected
		wantDL     bool // errors.Is(err, context.DeadlineExceeded)
	}{
		{
			name:      "action completes, then the db settles",
			actionUID: "act-1",
			answers: map[string][]answer{
				a:  {action("pending"), action("active"), action("completed")},
				db: {dbStatus(reapi.DBStatusChangePending), dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{a, a, a, db, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:      "older action vocabulary",
			actionUID: "act-1",
			answers: map[string][]answer{
				a:  {action("queued"), action("starting"), action("running"), action("completed")},
				db: {dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{a, a, a, a, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:      "action failed: error with its text, db not polled",
			actionUID: "act-1",
			answers: map[string][]answer{
				a: {action("active"), {200, `{"action_uid":"act-1","status":"failed","error":"shard migration failed"}`}},
			},
			wantPaths: []string{a, a},
			wantErr:   "wait for db 7 on cluster-a: action act-1 failed: shard migration failed",
		},
		{
			name:      "task failure: error_code and error_message",
			actionUID: "act-1",
			answers: map[string][]answer{
				a: {{200, `{"action_uid":"act-1","status":"failed","error_code":"insufficient_resources","error_message":"not enough memory on the nodes"}`}},
			},
			wantPaths: []string{a},
			wantErr:   "action act-1 failed: insufficient_resources: not enough memory on the nodes",
		},
		{
			name:      "task failure: error_code alone",
			actionUID: "act-1",
			answers:   map[string][]answer{a: {{200, `{"action_uid":"act-1","status":"failed","error_code":"internal_error"}`}}},
			wantPaths: []string{a},
			wantErr:   "action act-1 failed: internal_error",
		},
		{
			name:      "v2 failure: additional_info.error",
			actionUID: "act-1",
			answers: map[string][]answer{
				a: {{200, `{"action_uid":"act-1","status":"failed","additional_info":{"error":"bdb 7 is locked","object_type":"bdb","object_uid":"7"}}`}},
			},
			wantPaths: []string{a},
			wantErr:   "action act-1 failed: bdb 7 is locked",
		},
		{
			name:      "every shape at once, duplicates once",
			actionUID: "act-1",
			answers: map[string][]answer{
				a: {{200, `{"action_uid":"act-1","status":"failed","error":"x","error_code":"c","error_message":"m","additional_info":{"error":"x"}}`}},
			},
			wantPaths: []string{a},
			wantErr:   "action act-1 failed: x; c: m",
		},
		{
			name:      "action aborted",
			actionUID: "act-1",
			answers:   map[string][]answer{a: {{200, `{"action_uid":"act-1","status":"aborted","error_message":"node went down"}`}}},
			wantPaths: []string{a},
			wantErr:   "action act-1 aborted: node went down",
		},
		{
			name:      "empty action and db answers are polled again",
			actionUID: "act-1",
			answers: map[string][]answer{
				a:  {{200, ``}, action("completed")},
				db: {{200, ``}, dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{a, a, db, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:      "action cancelled",
			actionUID: "act-1",
			answers:   map[string][]answer{a: {action("cancelled")}},
			wantPaths: []string{a},
			wantErr:   "action act-1 cancelled: no error text",
		},
		{
			name:      "action already reaped (404): fall through to the db",
			actionUID: "act-1",
			answers: map[string][]answer{
				a:  {{404, `{"error_code":"action_not_exist"}`}},
				db: {dbStatus(reapi.DBStatusChangePending), dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{a, db, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:      "action 503 is retried by the call itself",
			actionUID: "act-1",
			answers: map[string][]answer{
				a:  {{503, `{}`}, action("completed")},
				db: {dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{a, a, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:      "action 401 is an error",
			actionUID: "act-1",
			answers:   map[string][]answer{a: {{401, `{"error_code":"unauthorized"}`}}},
			wantPaths: []string{a},
			wantErr:   "get action act-1 on cluster-a",
			wantAPI:   401,
		},
		{
			name: "no action: poll the db",
			answers: map[string][]answer{
				db: {dbStatus(reapi.DBStatusChangePending), dbStatus(reapi.DBStatusChangePending), dbStatus(reapi.DBStatusActive)},
			},
			wantPaths:  []string{db, db, db},
			wantStatus: reapi.DBStatusActive,
		},
		{
			name:       "any settled status is returned for the caller to verify",
			answers:    map[string][]answer{db: {dbStatus("pending")}},
			wantPaths:  []string{db},
			wantStatus: "pending",
		},
		{
			name:      "db gone",
			answers:   map[string][]answer{db: {{404, `{"error_code":"bdb_not_exist"}`}}},
			wantPaths: []string{db},
			wantErr:   "wait for db 7 on cluster-a: get db 7 on cluster-a",
			wantAPI:   404,
		},
		{
			name:      "deadline while the db stays pending",
			answers:   map[string][]answer{db: {dbStatus(reapi.DBStatusChangePending)}},
			deadline:  3*time.Minute + 30*time.Second, // polls at 0, 1, 2, 3 min; a 4th sleep would cross it
			wantPaths: rep(db, 4),
			wantErr:   `db still "active-change-pending": next poll in 1m0s would pass the context deadline`,
			wantDL:    true,
		},
		{
			name:      "deadline while the action runs",
			actionUID: "act-1",
			answers:   map[string][]answer{a: {action("active")}},
			deadline:  2*time.Minute + 30*time.Second,
			wantPaths: rep(a, 3),
			wantErr:   `action act-1 still "active"`,
			wantDL:    true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, routes(tc.answers))
			c, h := newClient(t, s)
			base := simulatedClock(c, h)
			dl := tc.deadline
			if dl == 0 {
				dl = 24 * time.Hour
			}
			ctx, cancel := context.WithDeadline(t.Context(), base.Add(dl))
			defer cancel()
			got, err := c.WaitForDB(ctx, 7, tc.actionUID, time.Minute) // sleeps are simulated
			if d := cmp.Diff(tc.wantPaths, paths(s.requests())); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got.UID != 7 || got.Status != tc.wantStatus {
					t.Errorf("db = %+v, want uid 7 status %q", got, tc.wantStatus)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			var apiErr *reapi.Error
			if gotAPI := errors.As(err, &apiErr); gotAPI != (tc.wantAPI != 0) || (gotAPI && apiErr.StatusCode != tc.wantAPI) {
				t.Errorf("err = %v, want *reapi.Error with status %d", err, tc.wantAPI)
			}
			if errors.Is(err, context.DeadlineExceeded) != tc.wantDL {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", !tc.wantDL, tc.wantDL)
			}
		})
	}
	t.Run("poll <= 0 means one second", func(t *testing.T) {
		s := startServer(t, routes(map[string][]answer{db: {dbStatus(reapi.DBStatusChangePending), dbStatus(reapi.DBStatusActive)}}))
		c, h := newClient(t, s)
		if _, err := c.WaitForDB(t.Context(), 7, "", 0); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]time.Duration{time.Second}, h.slept()); d != "" {
			t.Errorf("sleeps (-want +got):\n%s", d)
		}
	})
}

func TestUpdateCertificateFallback(t *testing.T) {
	const (
		newAPI = "/v1/cluster/certificates"
		oldAPI = "/v1/cluster/update_cert"
	)
	ok := answer{200, `{}`}
	tests := []struct {
		name      string
		answers   map[string][]answer
		wantPaths []string // after two UpdateCertificate calls
		wantErr   []string // per call; "" = success
		wantAPI   []int    // per call: status of the *reapi.Error expected
	}{
		{
			name:      "new endpoint works",
			answers:   map[string][]answer{newAPI: {ok}},
			wantPaths: []string{newAPI, newAPI},
			wantErr:   []string{"", ""},
			wantAPI:   []int{0, 0},
		},
		{
			name:      "404 falls back, and the fallback is remembered",
			answers:   map[string][]answer{newAPI: {{404, `{"error_code":"not_found"}`}}, oldAPI: {ok}},
			wantPaths: []string{newAPI, oldAPI, oldAPI},
			wantErr:   []string{"", ""},
			wantAPI:   []int{0, 0},
		},
		{
			name:      "405 falls back too",
			answers:   map[string][]answer{newAPI: {{405, ``}}, oldAPI: {ok}},
			wantPaths: []string{newAPI, oldAPI, oldAPI},
			wantErr:   []string{"", ""},
			wantAPI:   []int{0, 0},
		},
		{
			name:      "a validation error is returned, not a reason to fall back",
			answers:   map[string][]answer{newAPI: {{400, `{"error_code":"invalid_certificate","message":"bad"}`}}},
			wantPaths: []string{newAPI, newAPI},
			wantErr:   []string{"update syncer certificate on cluster-a: PUT /v1/cluster/certificates: HTTP 400 invalid_certificate: bad", "HTTP 400"},
			wantAPI:   []int{400, 400},
		},
		{
			name: "a failing fallback is reported as such",
			answers: map[string][]answer{
				newAPI: {{404, `{}`}},
				oldAPI: {{406, `{"error_code":"certificate_expired"}`}, ok},
			},
			wantPaths: []string{newAPI, oldAPI, oldAPI},
			wantErr:   []string{"update syncer certificate on cluster-a (legacy update_cert): PUT /v1/cluster/update_cert: HTTP 406 certificate_expired", ""},
			wantAPI:   []int{406, 0},
		},
	}
	u := reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: "CERTPEM", Key: "KEYPEM"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, routes(tc.answers))
			c, _ := newClient(t, s)
			for i := range 2 {
				err := c.UpdateCertificate(t.Context(), u)
				if tc.wantErr[i] == "" {
					if err != nil {
						t.Errorf("call %d: %v", i, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr[i]) {
					t.Errorf("call %d: err = %v, want it to contain %q", i, err, tc.wantErr[i])
				}
				var apiErr *reapi.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.wantAPI[i] {
					t.Errorf("call %d: err = %v, want *reapi.Error %d", i, err, tc.wantAPI[i])
				}
				if strings.Contains(err.Error(), "KEYPEM") {
					t.Errorf("call %d: error contains the key: %v", i, err)
				}
			}
			reqs := s.requests()
			if d := cmp.Diff(tc.wantPaths, paths(reqs)); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			for _, r := range reqs {
				want := `{"certificates":[{"name":"syncer","certificate":"CERTPEM","key":"KEYPEM"}]}`
				if r.Path == oldAPI {
					want = `{"name":"syncer","certificate":"CERTPEM","key":"KEYPEM"}`
				}
				if r.Method != http.MethodPut {
					t.Errorf("%s: method %s", r.Path, r.Method)
				}
				if d := jsonDiff(t, want, r.Body); d != "" {
					t.Errorf("%s body (-want +got):\n%s", r.Path, d)
				}
			}
		})
	}
}

// TestConcurrentUse runs calls from several goroutines on one Client; with -race it checks the
// remembered fallback and the retry path share no unsynchronised state.
func TestConcurrentUse(t *testing.T) {
	s := startServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.URL.Path == "/v1/cluster/certificates":
			writeJSON(w, 404, `{}`)
		case n%3 == 0:
			writeJSON(w, 409, `{"error_code":"busy"}`)
		default:
			writeJSON(w, 200, `{"uid":1}`)
		}
	})
	c, _ := newClient(t, s, maxAttempts(20))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			errs <- c.UpdateCertificate(t.Context(), reapi.CertUpdate{Name: "proxy", Certificate: "C", Key: "K"})
		})
		wg.Go(func() {
			_, err := c.GetDB(t.Context(), i+1)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if !c.legacyCertAPI.Load() {
		t.Error("fallback not remembered")
	}
	before := s.count()
	if err := c.UpdateCertificate(t.Context(), reapi.CertUpdate{Name: "proxy", Certificate: "C", Key: "K"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths(s.requests()[before:]) { // 1 or 2: the server 409s every third request
		if p != "/v1/cluster/update_cert" {
			t.Errorf("after the fallback was learned, a request went to %s", p)
		}
	}
}
