package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

func TestNewRejectsBadBounds(t *testing.T) {
	s := startServer(t, always(200, `{}`))
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"negative MaxResponseBytes", func(c *Config) { c.MaxResponseBytes = -1 }, "MaxResponseBytes must not be negative"},
		{"negative CallShare", func(c *Config) { c.CallShare = -0.1 }, "CallShare must be between 0 and 1"},
		{"CallShare above 1", func(c *Config) { c.CallShare = 1.5 }, "CallShare must be between 0 and 1"},
		{"negative MaxCallTime", func(c *Config) { c.MaxCallTime = -time.Second }, "MaxCallTime must not be negative"},
		{"negative ConnectAttempts", func(c *Config) { c.Retry.ConnectAttempts = -1 }, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM}
			tc.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "cluster-a") {
				t.Errorf("err = %v, want it to contain %q and the cluster name", err, tc.wantErr)
			}
		})
	}
	t.Run("zero values take the defaults", func(t *testing.T) {
		c, _ := newClient(t, s)
		got := []any{c.maxResponse, c.callShare, c.maxCallTime}
		want := []any{int64(DefaultMaxResponseBytes), DefaultCallShare, DefaultMaxCallTime}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("defaults (-want +got):\n%s", d)
		}
	})
}

// dbList is a JSON array of n small databases.
func dbList(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`{"uid":%d,"name":"db-%d","tls_mode":"disabled"}`, i+1, i+1)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestMaxResponseBytes(t *testing.T) {
	list := dbList(40)
	size := int64(len(list))
	tests := []struct {
		name    string
		cap     int64
		body    string
		chunked bool // no Content-Length: only the streaming cap can catch it
		wantErr bool
	}{
		{name: "body exactly at the cap", cap: size, body: list},
		{name: "one byte over, with Content-Length", cap: size - 1, body: list, wantErr: true},
		{name: "one byte over, chunked", cap: size - 1, body: list, chunked: true, wantErr: true},
		{name: "far over, chunked", cap: 100, body: list, chunked: true, wantErr: true},
		{name: "white space padding after the value counts", cap: size + 10, body: list + strings.Repeat(" ", 11), chunked: true, wantErr: true},
		{name: "white space padding within the cap is fine", cap: size + 10, body: list + strings.Repeat("\n", 10), chunked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json")
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(tc.body)))
				}
				w.WriteHeader(200)
				if tc.chunked {
					http.NewResponseController(w).Flush() // headers out before the body: no Content-Length
				}
				_, _ = io.WriteString(w, tc.body)
			})
			c, h := newClient(t, s, maxAttempts(3), func(c *Config) { c.MaxResponseBytes = tc.cap })
			dbs, err := c.ListDBs(t.Context(), "uid", "name")
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if len(dbs) != 40 || dbs[39].UID != 40 {
					t.Errorf("got %d dbs", len(dbs))
				}
				return
			}
			checkTooLarge(t, err, tc.cap)
			if dbs != nil {
				t.Errorf("got %d dbs with the error, want none", len(dbs))
			}
			if s.count() != 1 || len(h.slept()) != 0 {
				t.Errorf("attempts = %d, sleeps = %d: a response too large is final", s.count(), len(h.slept()))
			}
		})
	}
}

func checkTooLarge(t *testing.T, err error, limit int64) {
	t.Helper()
	if !errors.Is(err, reapi.ErrResponseTooLarge) {
		t.Fatalf("err = %v, want errors.Is reapi.ErrResponseTooLarge", err)
	}
	var ce *reapi.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *reapi.CallError", err)
	}
	want := &reapi.CallError{Code: reapi.CodeResponseTooLarge, Cluster: "cluster-a", Method: "GET", Path: "/v1/bdbs", Limit: limit}
	if d := cmp.Diff(want, ce, cmpIgnoreErr); d != "" {
		t.Errorf("call error (-want +got):\n%s", d)
	}
	for _, part := range []string{"list dbs on cluster-a", "GET /v1/bdbs", strconv.FormatInt(limit, 10) + " bytes", "MaxResponseBytes"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q should name %q", err, part)
		}
	}
	if strings.Contains(err.Error(), testPass) {
		t.Errorf("error shows the password: %v", err)
	}
}

var cmpIgnoreErr = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())

// TestMaxResponseBytesStopsReading shows the cap is enforced while the body streams in: a server
// sending an endless list is cut off after the cap, not read to the end.
func TestMaxResponseBytesStopsReading(t *testing.T) {
	var written atomic.Int64
	done := make(chan struct{})
	s := startServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		defer close(done)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat(`{"uid":1,"name":"padding-padding-padding"},`, 1000))
		n, _ := w.Write([]byte("["))
		written.Add(int64(n))
		for written.Load() < 1<<30 && r.Context().Err() == nil {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	const limit = 256 << 10
	c, _ := newClient(t, s, func(c *Config) { c.MaxResponseBytes = limit })
	_, err := c.ListDBs(t.Context())
	checkTooLarge(t, err, limit)
	c.hc.CloseIdleConnections()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server kept writing: the client did not let go of the connection")
	}
	// Socket buffers absorb some megabytes; reading to the end would have been a gigabyte.
	if got := written.Load(); got > 64<<20 {
		t.Errorf("the server wrote %d bytes before the client let go", got)
	}
}

func TestEmptyBodies(t *testing.T) {
	calls := []struct {
		name   string
		call   func(ctx context.Context, c *Client) (any, error)
		want   any
		writes int64
	}{
		{"list dbs", func(ctx context.Context, c *Client) (any, error) { return c.ListDBs(ctx, "uid") }, []reapi.DB(nil), 0},
		{"get db", func(ctx context.Context, c *Client) (any, error) { return c.GetDB(ctx, 3) }, reapi.DB{}, 0},
		{"update db", func(ctx context.Context, c *Client) (any, error) {
			return c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSReplicaSSL)}, false)
		}, reapi.DB{}, 1},
		{"dry-run update db", func(ctx context.Context, c *Client) (any, error) {
			return c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSReplicaSSL)}, true)
		}, reapi.DB{}, 0},
		{"get cluster", func(ctx context.Context, c *Client) (any, error) { return c.GetCluster(ctx) }, reapi.Cluster{}, 0},
		{"get action", func(ctx context.Context, c *Client) (any, error) { return c.GetAction(ctx, "a-1") }, reapi.Action{}, 0},
		{"update certificate", func(ctx context.Context, c *Client) (any, error) {
			return nil, c.UpdateCertificate(ctx, reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: "C", Key: "K"})
		}, nil, 1},
	}
	bodies := []struct {
		name   string
		status int
		body   string
	}{
		{"200 without a body", 200, ""},
		{"200 with white space only", 200, " \r\n\t"},
		{"204 No Content", 204, ""},
	}
	for _, call := range calls {
		for _, b := range bodies {
			t.Run(call.name+", "+b.name, func(t *testing.T) {
				s := startServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
					w.WriteHeader(b.status)
					_, _ = io.WriteString(w, b.body)
				})
				c, h := newClient(t, s, maxAttempts(3))
				got, err := call.call(t.Context(), c)
				if err != nil {
					t.Fatalf("err = %v, want success with a zero value", err)
				}
				if d := cmp.Diff(call.want, got); d != "" {
					t.Errorf("result (-want +got):\n%s", d)
				}
				if s.count() != 1 || len(h.slept()) != 0 {
					t.Errorf("attempts = %d, sleeps = %d; want 1 and 0", s.count(), len(h.slept()))
				}
				if d := cmp.Diff(Stats{Calls: 1, Writes: call.writes}, c.Stats()); d != "" {
					t.Errorf("stats (-want +got):\n%s", d)
				}
			})
		}
	}
}

func TestBadBodiesAreDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"trailing value", `[{"uid":1}] [{"uid":2}]`, "decode response"},
		{"trailing garbage", `[{"uid":1}] x`, "decode response"},
		{"object where a list belongs", `{"uid":1}`, "want a JSON array"},
		{"truncated list after a comma", `[{"uid":1},`, "unexpected EOF"},
		{"truncated list after an element", `[{"uid":1}`, "unexpected EOF"},
		{"truncated list after the bracket", `[`, "unexpected EOF"},
		{"wrong element type", `[{"uid":"one"}]`, "decode response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, always(200, tc.body))
			c, h := newClient(t, s, maxAttempts(3))
			dbs, err := c.ListDBs(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "list dbs on cluster-a: GET /v1/bdbs") {
				t.Fatalf("err = %v, want a wrapped error containing %q", err, tc.wantErr)
			}
			if dbs != nil {
				t.Errorf("got %v with the error", dbs)
			}
			if s.count() != 1 || len(h.slept()) != 0 {
				t.Errorf("attempts = %d, sleeps = %d: a bad body is not retried", s.count(), len(h.slept()))
			}
		})
	}
	t.Run("null list is an empty result", func(t *testing.T) {
		s := startServer(t, always(200, `null`))
		c, _ := newClient(t, s)
		dbs, err := c.ListDBs(t.Context())
		if err != nil || dbs != nil {
			t.Errorf("got %v, %v; want nil, nil", dbs, err)
		}
	})
}

func TestRetryAfterBrokenBodyStartsClean(t *testing.T) {
	// The first answer breaks off after one database with a field the second lacks: the result must
	// be the second answer alone, not a mix.
	s := startServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 0 {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n" +
				`[{"uid":1,"name":"stale","tls_mode":"enabled"},{"uid":2,`)
			_ = buf.Flush()
			_ = conn.Close()
			return
		}
		writeJSON(w, 200, `[{"uid":1}]`)
	})
	c, _ := newClient(t, s, maxAttempts(3))
	dbs, err := c.ListDBs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]reapi.DB{{UID: 1}}, dbs); d != "" {
		t.Errorf("dbs (-want +got):\n%s", d)
	}
	single := startServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n == 0 {
			hangUp(t, w, true) // `{"uid":` then EOF
			return
		}
		writeJSON(w, 200, `{"name":"fresh"}`)
	})
	c, _ = newClient(t, single, maxAttempts(3))
	db, err := c.GetDB(t.Context(), 3)
	if err != nil || !cmp.Equal(reapi.DB{Name: "fresh"}, db) {
		t.Errorf("got %+v, %v; want only the second answer", db, err)
	}
}

func TestPartiallyAppliedCertificateUpdate(t *testing.T) {
	const (
		newAPI = "/v1/cluster/certificates"
		oldAPI = "/v1/cluster/update_cert"
	)
	upd := reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: "CPEM", Key: "KPEM"}
	partial := answer{409, `{"error_code":"nodes_not_updated","message":"not all nodes have been updated"}`}
	ok := answer{200, `{}`}
	tests := []struct {
		name      string
		answers   map[string][]answer
		mods      []func(*Config)
		wantPaths []string
		wantCode  string // "" = success
		wantMsg   string
		timeout   bool // the budget ran out rather than the attempts
	}{
		{
			name:      "two 409s then success",
			answers:   map[string][]answer{newAPI: {partial, partial, ok}},
			mods:      []func(*Config){maxAttempts(5)},
			wantPaths: []string{newAPI, newAPI, newAPI},
		},
		{
			name:      "409 until the attempts run out",
			answers:   map[string][]answer{newAPI: {partial}},
			mods:      []func(*Config){maxAttempts(3)},
			wantPaths: []string{newAPI, newAPI, newAPI},
			wantCode:  reapi.CodePartiallyApplied,
			wantMsg:   "update syncer certificate on cluster-a: partially applied (not all nodes have been updated): the cluster kept answering 409",
		},
		{
			name:      "legacy update_cert, 409 until the attempts run out",
			answers:   map[string][]answer{newAPI: {{404, `{}`}}, oldAPI: {partial}},
			mods:      []func(*Config){maxAttempts(2)},
			wantPaths: []string{newAPI, oldAPI, oldAPI},
			wantCode:  reapi.CodePartiallyApplied,
			wantMsg:   "(legacy update_cert): partially applied",
		},
		{
			name:      "409 until the time budget runs out",
			answers:   map[string][]answer{newAPI: {partial}},
			mods:      []func(*Config){func(c *Config) { c.MaxCallTime = time.Second }},
			wantPaths: []string{newAPI, newAPI, newAPI}, // sleeps 0.2+0.4 fit in 1s, 0.8 more does not
			wantCode:  reapi.CodePartiallyApplied,
			wantMsg:   "partially applied",
			timeout:   true,
		},
		{
			name:      "a final 400 after a 409 reports the 400",
			answers:   map[string][]answer{newAPI: {partial, {400, `{"error_code":"invalid_certificate"}`}}},
			mods:      []func(*Config){maxAttempts(5)},
			wantPaths: []string{newAPI, newAPI},
			wantCode:  "invalid_certificate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, routes(tc.answers))
			c, h := newClient(t, s, tc.mods...)
			simulatedClock(c, h)
			err := c.UpdateCertificate(t.Context(), upd)
			if d := cmp.Diff(tc.wantPaths, paths(s.requests())); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if got := reapi.ErrorCode(err); got != tc.wantCode {
				t.Errorf("code = %q, want %q (err %v)", got, tc.wantCode, err)
			}
			if tc.wantCode != reapi.CodePartiallyApplied {
				return
			}
			if !errors.Is(err, reapi.ErrPartiallyApplied) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want errors.Is ErrPartiallyApplied and %q", err, tc.wantMsg)
			}
			var apiErr *reapi.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 {
				t.Errorf("err = %v, want the 409 reachable with errors.As", err)
			}
			if errors.Is(err, reapi.ErrTimeout) != tc.timeout || errors.Is(err, context.DeadlineExceeded) != tc.timeout {
				t.Errorf("err = %v: timeout = %v, want %v", err, errors.Is(err, reapi.ErrTimeout), tc.timeout)
			}
			if strings.Contains(err.Error(), "KPEM") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
	t.Run("a 409 on a database update is busy, not partially applied", func(t *testing.T) {
		s := startServer(t, always(409, `{"error_code":"busy"}`))
		c, _ := newClient(t, s, maxAttempts(2))
		_, err := c.UpdateDB(t.Context(), 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, false)
		if got := reapi.ErrorCode(err); got != "busy" || errors.Is(err, reapi.ErrPartiallyApplied) {
			t.Errorf("code = %q (err %v), want busy", got, err)
		}
	})
}

func TestCallBudget(t *testing.T) {
	busy := always(409, `{"error_code":"busy"}`)
	tests := []struct {
		name      string
		mod       func(*Config)
		deadline  time.Duration // simulated, from the start; 0 = none
		wantSleep []time.Duration
	}{
		{
			name:     "half of the time left by default",
			deadline: 30 * time.Second, // budget 15s: 0.2+0.4+0.8+1.6+3.2+5 = 11.2s, one more 5s would pass it
			wantSleep: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
				1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second},
		},
		{
			name:      "a smaller share",
			mod:       func(c *Config) { c.CallShare = 0.1 }, // 3s: 0.2+0.4+0.8 = 1.4s, 1.6 more would pass it
			deadline:  30 * time.Second,
			wantSleep: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		},
		{
			name:      "MaxCallTime below the share",
			mod:       func(c *Config) { c.MaxCallTime = 700 * time.Millisecond },
			deadline:  time.Hour,
			wantSleep: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name: "MaxCallTime bounds a context without deadline",
			mod: func(c *Config) {
				c.MaxCallTime = 2 * time.Second
				c.Retry.MaxAttempts = 100 // not the attempts-without-deadline bound
			},
			wantSleep: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, busy)
			var mods []func(*Config)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			c, h := newClient(t, s, mods...)
			base := simulatedClock(c, h)
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, base.Add(tc.deadline))
				defer cancel()
			}
			_, err := c.GetDB(ctx, 3)
			if d := cmp.Diff(tc.wantSleep, h.slept()); d != "" {
				t.Errorf("sleeps (-want +got):\n%s", d)
			}
			if got := s.count(); got != len(tc.wantSleep)+1 {
				t.Errorf("attempts = %d, want %d", got, len(tc.wantSleep)+1)
			}
			checkTimeout(t, err)
			if e := apiErrOf(err); e == nil || e.StatusCode != 409 {
				t.Errorf("err = %v, want the last 409 reachable with errors.As", err)
			}
			if ctx.Err() != nil {
				t.Errorf("the caller's context is done: the budget should have left it time")
			}
		})
	}
	t.Run("real clock: a cluster that does not answer costs only its share", func(t *testing.T) {
		s := startServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
		c, err := New(Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM,
			CallShare: 0.25})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		defer cancel()
		start := time.Now()
		_, err = c.GetCluster(ctx)
		elapsed := time.Since(start)
		checkTimeout(t, err)
		if ctx.Err() != nil || elapsed > 3*time.Second {
			t.Errorf("the call took %s of a 4s context; its share is 1s", elapsed)
		}
		if !strings.Contains(err.Error(), "time budget of 1s is spent") {
			t.Errorf("err = %v, want it to say the budget is spent", err)
		}
	})
}

func checkTimeout(t *testing.T, err error) {
	t.Helper()
	var ce *reapi.CallError
	if !errors.As(err, &ce) || ce.Code != reapi.CodeTimeout || ce.Cluster != "cluster-a" {
		t.Fatalf("err = %v, want a *reapi.CallError coded timeout for cluster-a", err)
	}
	if !errors.Is(err, reapi.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, reapi.ErrUnreachable) {
		t.Errorf("err = %v: want errors.Is ErrTimeout and DeadlineExceeded, not ErrUnreachable", err)
	}
	if reapi.ErrorCode(err) != reapi.CodeTimeout {
		t.Errorf("ErrorCode = %q", reapi.ErrorCode(err))
	}
}

func apiErrOf(err error) *reapi.Error {
	var e *reapi.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// deadPeer accepts TCP connections and handles each with h, which must return once stop is closed;
// everything stops with the test.
func deadPeer(t *testing.T, h func(conn net.Conn, stop <-chan struct{})) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = conn.Close() }()
				h(conn, stop)
			})
		}
	})
	return "https://" + ln.Addr().String()
}

func TestUnreachable(t *testing.T) {
	refused := func(t *testing.T) string {
		s := startServer(t, always(200, `{}`))
		s.Close()
		return s.URL
	}
	hangUpAtOnce := func(t *testing.T) string { return deadPeer(t, func(net.Conn, <-chan struct{}) {}) }
	neverHandshakes := func(t *testing.T) string {
		return deadPeer(t, func(_ net.Conn, stop <-chan struct{}) { <-stop })
	}
	tests := []struct {
		name       string
		url        func(t *testing.T) string
		mods       []func(*Config)
		ctxTimeout time.Duration // real clock; 0 = none
		wantTries  int           // recorded sleeps + 1; 0 = not checked (real clock)
		wantText   string
	}{
		{name: "connection refused: three tries by default", url: refused, wantTries: 3, wantText: "connection refused"},
		{name: "connection refused: ConnectAttempts", url: refused, wantTries: 5, wantText: "connection refused",
			mods: []func(*Config){func(c *Config) { c.Retry.ConnectAttempts = 5 }}},
		{name: "connection refused: MaxAttempts below ConnectAttempts", url: refused, wantTries: 2, wantText: "giving up after 2 attempts",
			mods: []func(*Config){maxAttempts(2)}},
		// EOF or a reset, depending on timing.
		{name: "peer hangs up during the TLS handshake", url: hangUpAtOnce, wantTries: 3, wantText: "3 attempts in a row found no connection"},
		{name: "no such host: not retried", url: func(*testing.T) string { return "https://cluster-a.invalid:9443" }, wantTries: 1, wantText: "cluster-a.invalid"},
		{name: "peer never finishes the TLS handshake", url: neverHandshakes, ctxTimeout: 2 * time.Second, wantText: "time budget of 1s is spent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, always(200, `{}`)) // only for its certificate
			mods := append([]func(*Config){func(c *Config) { c.URL = tc.url(t) }}, tc.mods...)
			c, h := newClient(t, s, mods...)
			ctx := t.Context()
			if tc.ctxTimeout > 0 {
				c.sleep = sleepCtx
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			_, err := c.GetCluster(ctx)
			var ce *reapi.CallError
			if !errors.As(err, &ce) || ce.Code != reapi.CodeUnreachable {
				t.Fatalf("err = %v, want a *reapi.CallError coded unreachable", err)
			}
			want := &reapi.CallError{Code: reapi.CodeUnreachable, Cluster: "cluster-a", Method: "GET", Path: "/v1/cluster"}
			if d := cmp.Diff(want, ce, cmpIgnoreErr); d != "" {
				t.Errorf("call error (-want +got):\n%s", d)
			}
			if !errors.Is(err, reapi.ErrUnreachable) || errors.Is(err, reapi.ErrTimeout) {
				t.Errorf("err = %v: want errors.Is ErrUnreachable only", err)
			}
			if !strings.HasPrefix(err.Error(), "get cluster info on cluster-a: cluster unreachable: ") || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("err = %v, want it to start with the call and cluster and contain %q", err, tc.wantText)
			}
			if tc.wantTries > 0 && len(h.slept())+1 != tc.wantTries {
				t.Errorf("tries = %d, want %d", len(h.slept())+1, tc.wantTries)
			}
			if tc.ctxTimeout > 0 && (ctx.Err() != nil || time.Since(start) > tc.ctxTimeout) {
				t.Errorf("took %s: the call should stop at its share of the %s", time.Since(start), tc.ctxTimeout)
			}
		})
	}
	t.Run("a wrong pin is not unreachable", func(t *testing.T) {
		s := startServer(t, always(200, `{}`))
		c, _ := newClient(t, s, func(c *Config) { c.CACert = newCert(t, certOpts{}).pem })
		_, err := c.GetCluster(t.Context())
		if err == nil || reapi.ErrorCode(err) != "" {
			t.Errorf("err = %v (code %q), want an unclassified TLS verification error", err, reapi.ErrorCode(err))
		}
	})
	t.Run("an answer that never comes is a timeout, not unreachable", func(t *testing.T) {
		s := startServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() })
		c, _ := newClient(t, s, func(c *Config) { c.MaxCallTime = 300 * time.Millisecond })
		_, err := c.GetCluster(t.Context())
		checkTimeout(t, err)
	})
}

func TestStats(t *testing.T) {
	s := startServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 2 { // the first call meets two 503s
			writeJSON(w, 503, `{}`)
			return
		}
		writeJSON(w, 200, `{"uid":3,"status":"active"}`)
	})
	c, _ := newClient(t, s)
	steps := []struct {
		name string
		call func(ctx context.Context) error
		want Stats
	}{
		{"a read retried twice", func(ctx context.Context) error { _, err := c.GetDB(ctx, 3); return err }, Stats{Calls: 1, Retries: 2}},
		{"a dry run is not a write", func(ctx context.Context) error {
			_, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, true)
			return err
		}, Stats{Calls: 2, Retries: 2}},
		{"an update is", func(ctx context.Context) error {
			_, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, false)
			return err
		}, Stats{Calls: 3, Retries: 2, Writes: 1}},
		{"a certificate update is", func(ctx context.Context) error {
			return c.UpdateCertificate(ctx, reapi.CertUpdate{Name: "syncer", Certificate: "C", Key: "K"})
		}, Stats{Calls: 4, Retries: 2, Writes: 2}},
		{"every poll of a wait is a call", func(ctx context.Context) error { _, err := c.WaitForDB(ctx, 3, "", time.Millisecond); return err },
			Stats{Calls: 5, Retries: 2, Writes: 2}},
		{"bad input makes no call", func(ctx context.Context) error { _, _ = c.GetDB(ctx, 0); return nil }, Stats{Calls: 5, Retries: 2, Writes: 2}},
	}
	for _, st := range steps {
		if err := st.call(t.Context()); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if d := cmp.Diff(st.want, c.Stats()); d != "" {
			t.Errorf("%s: stats (-want +got):\n%s", st.name, d)
		}
	}
	t.Run("concurrent calls", func(t *testing.T) {
		s := startServer(t, always(200, `{"uid":3}`))
		c, _ := newClient(t, s)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := c.GetDB(t.Context(), 3); err != nil {
					t.Error(err)
				}
				_ = c.Stats()
			})
		}
		wg.Wait()
		if d := cmp.Diff(Stats{Calls: 20}, c.Stats()); d != "" {
			t.Errorf("stats (-want +got):\n%s", d)
		}
	})
}
