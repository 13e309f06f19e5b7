package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

func TestNew(t *testing.T) {
	s := startServer(t, always(200, `{"name":"a.example.com"}`))
	other := newCert(t, certOpts{})
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" = New succeeds and a call works
	}{
		{name: "valid", mod: func(*Config) {}},
		{name: "trailing slash in URL is fine", mod: func(c *Config) { c.URL += "/" }},
		{name: "CA bundle with two certificates", mod: func(c *Config) { c.CACert = other.pem + c.CACert }},
		{name: "empty URL", mod: func(c *Config) { c.URL = "" }, wantErr: "URL is required"},
		{name: "plain http", mod: func(c *Config) { c.URL = strings.Replace(c.URL, "https:", "http:", 1) }, wantErr: "must use https"},
		{name: "no scheme", mod: func(c *Config) { c.URL = strings.TrimPrefix(c.URL, "https://") }, wantErr: "must use https"},
		{name: "userinfo in URL", mod: func(c *Config) { c.URL = "https://admin:" + testPass + "@127.0.0.1:9443" }, wantErr: "must not contain credentials"},
		{name: "unparsable URL holding a password", mod: func(c *Config) { c.URL = "https://admin:" + testPass + "@127.0.0.1:94x3" }, wantErr: "not a valid URL"},
		{name: "query in URL", mod: func(c *Config) { c.URL += "/?password=" + testPass }, wantErr: "query"},
		{name: "path in URL", mod: func(c *Config) { c.URL += "/v1" }, wantErr: "path"},
		{name: "no host", mod: func(c *Config) { c.URL = "https:///v1" }, wantErr: "no host"},
		{name: "no username", mod: func(c *Config) { c.Username = "" }, wantErr: "username and password are required"},
		{name: "no password", mod: func(c *Config) { c.Password = "" }, wantErr: "username and password are required"},
		{name: "empty CACert", mod: func(c *Config) { c.CACert = "  \n" }, wantErr: "CACert is required"},
		{name: "CACert is not PEM", mod: func(c *Config) { c.CACert = "hello" }, wantErr: "holds no PEM certificate"},
		{name: "CACert is a private key", mod: func(c *Config) { c.CACert = other.keyPEM(t) }, wantErr: `is a "EC PRIVATE KEY", not a CERTIFICATE`},
		{name: "CACert with a key after the cert", mod: func(c *Config) { c.CACert += other.keyPEM(t) }, wantErr: "not a CERTIFICATE"},
		{name: "CACert block is corrupt", mod: func(c *Config) { c.CACert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }, wantErr: "not a valid certificate"},
		{name: "CACert with trailing garbage", mod: func(c *Config) { c.CACert += "-----BEGIN CERT" }, wantErr: "trailing data"},
		{name: "negative retry duration", mod: func(c *Config) { c.Retry.Initial = -time.Second }, wantErr: "must not be negative"},
		{name: "negative MaxAttempts", mod: func(c *Config) { c.Retry.MaxAttempts = -1 }, wantErr: "must not be negative"},
		{name: "shrinking multiplier", mod: func(c *Config) { c.Retry.Multiplier = 0.5 }, wantErr: "Multiplier must be at least 1"},
		{name: "Max below Initial", mod: func(c *Config) { c.Retry.Initial, c.Retry.Max = time.Second, time.Millisecond }, wantErr: "Max must not be smaller"},
		{name: "transport that cannot be pinned", mod: func(c *Config) { c.HTTPClient = &http.Client{Transport: roundTripFunc(nil)} }, wantErr: "only *http.Transport can be pinned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM}
			tc.mod(&cfg)
			c, err := New(cfg)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("New succeeded, want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "cluster-a") {
					t.Errorf("error %q should contain %q and the cluster name", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), testPass) || strings.Contains(err.Error(), "127.0.0.1:94") {
					t.Errorf("error echoes the URL or password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			before := s.count()
			cl, err := c.GetCluster(t.Context())
			if err != nil {
				t.Fatalf("GetCluster: %v", err)
			}
			if cl.Name != "a.example.com" {
				t.Errorf("cluster name = %q", cl.Name)
			}
			if got := s.requests()[before].Path; got != "/v1/cluster" {
				t.Errorf("path = %q, want /v1/cluster", got)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNameDefaultsToHost(t *testing.T) {
	s := startServer(t, always(200, `{}`))
	c, _ := newClient(t, s, func(c *Config) { c.Name = "" })
	if want := strings.TrimPrefix(s.URL, "https://"); c.Name() != want {
		t.Errorf("Name() = %q, want %q", c.Name(), want)
	}
}

func TestRetryPolicy(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		got, err := RetryPolicy{}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		want := RetryPolicy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("defaults (-want +got):\n%s", d)
		}
	})
	t.Run("large Initial raises the default Max", func(t *testing.T) {
		got, err := RetryPolicy{Initial: 10 * time.Second}.withDefaults()
		if err != nil || got.Max != 10*time.Second {
			t.Errorf("got %+v, %v; want Max 10s", got, err)
		}
	})
	tests := []struct {
		name   string
		policy RetryPolicy
		want   []time.Duration // backoff caps for attempts 1..len
	}{
		{name: "default schedule", policy: RetryPolicy{},
			want: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
				1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}},
		{name: "multiplier 1 is constant", policy: RetryPolicy{Initial: time.Second, Multiplier: 1},
			want: []time.Duration{time.Second, time.Second, time.Second}},
		{name: "capped at Max", policy: RetryPolicy{Initial: 100 * time.Millisecond, Max: 250 * time.Millisecond, Multiplier: 3},
			want: []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.policy.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for i := range tc.want {
				got = append(got, p.backoff(i+1))
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("schedule (-want +got):\n%s", d)
			}
		})
	}
	t.Run("huge attempt numbers stay at Max", func(t *testing.T) {
		p, _ := RetryPolicy{}.withDefaults()
		if got := p.backoff(10_000); got != 5*time.Second {
			t.Errorf("backoff(10000) = %v", got)
		}
	})
	t.Run("full jitter stays within [0, limit]", func(t *testing.T) {
		seen := map[bool]bool{}
		for range 1000 {
			d := fullJitter(time.Second)
			if d < 0 || d > time.Second {
				t.Fatalf("jitter %v out of range", d)
			}
			seen[d < 500*time.Millisecond] = true
		}
		if len(seen) != 2 {
			t.Errorf("1000 draws never landed in both halves of the range: not jittered")
		}
		if fullJitter(0) != 0 {
			t.Errorf("fullJitter(0) != 0")
		}
	})
}

// fixtureDB is a destination DB as a real cluster returns it, with fields this project does not model.
const fixtureDB = `{"uid":3,"name":"dest","status":"active","tls_mode":"disabled","ssl":false,` +
	`"enforce_client_authentication":"disabled","authentication_ssl_client_certs":[],` +
	`"authentication_ssl_crdt_certs":[],"replica_sync":"enabled","shards_count":1,` +
	`"endpoints":[{"uid":"3:1","dns_name":"redis-12000.b.example.com","port":12000,"addr":["10.0.0.2"],"addr_type":"internal"}],` +
	`"replica_sources":[` +
	`{"uid":1,"uri":"redis://admin:srcpass@redis-12000.a.example.com:12000","encryption":false,"compression":3,` +
	`"status":"in-sync","lag":0,"last_error":"","last_update":"2025-01-02T03:04:05Z","rdb_size":1024,"rdb_transferred":1024,"future_field":{"a":[1,2]}},` +
	`{"uid":2,"uri":"redis://admin:other@redis-13000.c.example.com:13000","encryption":true,"server_cert":"OLDPEM","replication_tls_sni":"c.example.com","status":"syncing","lag":17}]}`

func fixtureDBValue() reapi.DB {
	return reapi.DB{
		UID: 3, Name: "dest", Status: "active", TLSMode: reapi.TLSDisabled, EnforceClientAuthentication: "disabled",
		AuthenticationSSLClientCerts: []reapi.ClientCert{}, ReplicaSync: "enabled",
		Endpoints: []reapi.Endpoint{{UID: "3:1", DNSName: "redis-12000.b.example.com", Port: 12000, Addr: []string{"10.0.0.2"}}},
		ReplicaSources: []reapi.ReplicaSource{
			{UID: 1, URI: "redis://admin:srcpass@redis-12000.a.example.com:12000", Status: "in-sync",
				Extra: map[string]json.RawMessage{"compression": json.RawMessage(`3`), "last_update": json.RawMessage(`"2025-01-02T03:04:05Z"`),
					"rdb_size": json.RawMessage(`1024`), "rdb_transferred": json.RawMessage(`1024`), "future_field": json.RawMessage(`{"a":[1,2]}`)}},
			{UID: 2, URI: "redis://admin:other@redis-13000.c.example.com:13000", Encryption: true, ServerCert: "OLDPEM",
				ReplicationTLSSNI: "c.example.com", Status: "syncing", Lag: 17},
		},
	}
}

func TestRequests(t *testing.T) {
	// The desired replica sources: first entry gets TLS, everything else must round-trip.
	var decoded reapi.DB
	if err := json.Unmarshal([]byte(fixtureDB), &decoded); err != nil {
		t.Fatal(err)
	}
	sources := decoded.ReplicaSources
	sources[0].Encryption = true
	sources[0].ServerCert = "NEWPEM"

	tests := []struct {
		name     string
		call     func(ctx context.Context, c *Client) (any, error)
		response string
		want     request // Method, Path, Query, Body (JSON, compared structurally)
		wantOut  any
	}{
		{
			name:     "list dbs",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.ListDBs(ctx) },
			response: `[{"uid":1,"name":"a","tls_mode":"replica_ssl","unknown":{"x":1}},{"uid":2,"name":"b"}]`,
			want:     request{Method: "GET", Path: "/v1/bdbs"},
			wantOut:  []reapi.DB{{UID: 1, Name: "a", TLSMode: reapi.TLSReplicaSSL}, {UID: 2, Name: "b"}},
		},
		{
			name:     "list dbs with fields",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.ListDBs(ctx, "uid", "name", "tls_mode") },
			response: `[]`,
			want:     request{Method: "GET", Path: "/v1/bdbs", Query: "fields=uid,name,tls_mode"},
			wantOut:  []reapi.DB{},
		},
		{
			name:     "get db decodes a real payload",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.GetDB(ctx, 3) },
			response: fixtureDB,
			want:     request{Method: "GET", Path: "/v1/bdbs/3"},
			wantOut:  fixtureDBValue(),
		},
		{
			name:     "get db with fields",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.GetDB(ctx, 3, "uid", "status") },
			response: `{"uid":3,"status":"active-change-pending"}`,
			want:     request{Method: "GET", Path: "/v1/bdbs/3", Query: "fields=uid,status"},
			wantOut:  reapi.DB{UID: 3, Status: reapi.DBStatusChangePending},
		},
		{
			name: "update db sends only the changed field",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSReplicaSSL)}, false)
			},
			response: `{"uid":3,"tls_mode":"replica_ssl","status":"active-change-pending","action_uid":"a-1"}`,
			want:     request{Method: "PUT", Path: "/v1/bdbs/3", Body: `{"tls_mode":"replica_ssl"}`},
			wantOut:  reapi.DB{UID: 3, TLSMode: reapi.TLSReplicaSSL, Status: reapi.DBStatusChangePending, ActionUID: "a-1"},
		},
		{
			name: "dry run adds the query and nothing else",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, true)
			},
			response: `{"uid":3}`,
			want:     request{Method: "PUT", Path: "/v1/bdbs/3", Query: "dry_run=true", Body: `{"tls_mode":"enabled"}`},
			wantOut:  reapi.DB{UID: 3},
		},
		{
			name: "trust list and client authentication",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateDB(ctx, 3, reapi.DBUpdate{
					EnforceClientAuthentication:  ptr(reapi.Enabled),
					AuthenticationSSLClientCerts: &[]reapi.ClientCert{{ClientCert: "PEM1"}, {ClientCert: "PEM2"}},
				}, false)
			},
			response: `{"uid":3}`,
			want: request{Method: "PUT", Path: "/v1/bdbs/3",
				Body: `{"enforce_client_authentication":"enabled","authentication_ssl_client_certs":[{"client_cert":"PEM1"},{"client_cert":"PEM2"}]}`},
			wantOut: reapi.DB{UID: 3},
		},
		{
			name: "an empty list is sent, not dropped",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateDB(ctx, 3, reapi.DBUpdate{AuthenticationSSLClientCerts: &[]reapi.ClientCert{}}, false)
			},
			response: `{"uid":3}`,
			want:     request{Method: "PUT", Path: "/v1/bdbs/3", Body: `{"authentication_ssl_client_certs":[]}`},
			wantOut:  reapi.DB{UID: 3},
		},
		{
			name: "replica sources keep uid and unknown fields, drop read-only status",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateDB(ctx, 3, reapi.DBUpdate{ReplicaSources: &sources}, false)
			},
			response: `{"uid":3}`,
			want: request{Method: "PUT", Path: "/v1/bdbs/3", Body: `{"replica_sources":[` +
				`{"uid":1,"uri":"redis://admin:srcpass@redis-12000.a.example.com:12000","encryption":true,"server_cert":"NEWPEM","compression":3,"future_field":{"a":[1,2]}},` +
				`{"uid":2,"uri":"redis://admin:other@redis-13000.c.example.com:13000","encryption":true,"server_cert":"OLDPEM","replication_tls_sni":"c.example.com"}]}`},
			wantOut: reapi.DB{UID: 3},
		},
		{
			name:     "get cluster",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.GetCluster(ctx) },
			response: `{"name":"b.example.com","proxy_certificate":"PPEM","syncer_certificate":"SPEM","nodes":[1,2]}`,
			want:     request{Method: "GET", Path: "/v1/cluster"},
			wantOut:  reapi.Cluster{Name: "b.example.com", ProxyCertificate: "PPEM", SyncerCertificate: "SPEM"},
		},
		{
			name:     "get action",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.GetAction(ctx, "5f0c-9a") },
			response: `{"action_uid":"5f0c-9a","name":"SMUpdateBDB","status":"active","progress":"50.0"}`,
			want:     request{Method: "GET", Path: "/v1/actions/5f0c-9a"},
			wantOut:  reapi.Action{ActionUID: "5f0c-9a", Name: "SMUpdateBDB", Status: "active", Progress: "50.0"},
		},
		{
			name:     "action uid is escaped into the path",
			call:     func(ctx context.Context, c *Client) (any, error) { return c.GetAction(ctx, "a/b c") },
			response: `{"action_uid":"a/b c","status":"completed"}`,
			want:     request{Method: "GET", Path: "/v1/actions/a%2Fb%20c"},
			wantOut:  reapi.Action{ActionUID: "a/b c", Status: "completed"},
		},
		{
			name: "update certificate",
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.UpdateCertificate(ctx, reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: "CPEM", Key: "KPEM"})
			},
			response: `{}`,
			want:     request{Method: "PUT", Path: "/v1/cluster/certificates", Body: `{"certificates":[{"name":"syncer","certificate":"CPEM","key":"KPEM"}]}`},
			wantOut:  nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, always(200, tc.response))
			c, _ := newClient(t, s)
			got, err := tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if d := cmp.Diff(tc.wantOut, got); d != "" {
				t.Errorf("result (-want +got):\n%s", d)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.want.Method || r.Path != tc.want.Path || r.Query != tc.want.Query {
				t.Errorf("request = %s %s?%s, want %s %s?%s", r.Method, r.Path, r.Query, tc.want.Method, tc.want.Path, tc.want.Query)
			}
			if !r.HasAuth || r.User != testUser || r.Pass != testPass {
				t.Errorf("basic auth = %v %q, want %q and the test password", r.HasAuth, r.User, testUser)
			}
			if tc.want.Body == "" {
				if r.Body != "" || r.ContentType != "" {
					t.Errorf("unexpected body %q (Content-Type %q)", r.Body, r.ContentType)
				}
				return
			}
			if r.ContentType != "application/json" {
				t.Errorf("Content-Type = %q", r.ContentType)
			}
			if d := jsonDiff(t, tc.want.Body, r.Body); d != "" {
				t.Errorf("body (-want +got):\n%s", d)
			}
		})
	}
}

func TestBadInputMakesNoCall(t *testing.T) {
	s := startServer(t, always(200, `{}`))
	c, _ := newClient(t, s)
	tests := []struct {
		name    string
		call    func(ctx context.Context) error
		wantErr string
	}{
		{"get db 0", func(ctx context.Context) error { _, err := c.GetDB(ctx, 0); return err }, "get db 0 on cluster-a: db uid must be positive"},
		{"update negative uid", func(ctx context.Context) error {
			_, err := c.UpdateDB(ctx, -1, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, false)
			return err
		}, "update db -1 on cluster-a: db uid must be positive"},
		{"empty update", func(ctx context.Context) error { _, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{}, false); return err }, "update db 3 on cluster-a: the update changes nothing"},
		{"empty dry run", func(ctx context.Context) error { _, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{}, true); return err }, "validate update of db 3"},
		{"field with a comma", func(ctx context.Context) error { _, err := c.ListDBs(ctx, "uid,name"); return err }, `invalid field name "uid,name"`},
		{"empty field", func(ctx context.Context) error { _, err := c.GetDB(ctx, 3, ""); return err }, `invalid field name ""`},
		{"empty action uid", func(ctx context.Context) error { _, err := c.GetAction(ctx, ""); return err }, "action uid is required"},
		{"certificate without key", func(ctx context.Context) error {
			return c.UpdateCertificate(ctx, reapi.CertUpdate{Name: "syncer", Certificate: "C"})
		}, "name, certificate and key are all required"},
		{"wait for db 0", func(ctx context.Context) error { _, err := c.WaitForDB(ctx, 0, "", time.Millisecond); return err }, "db uid must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if n := s.count(); n != 0 {
				t.Errorf("server saw %d requests, want none", n)
			}
		})
	}
}

func TestStatusCodes(t *testing.T) {
	const body = `{"error_code":"some_code","message":"some message"}`
	tests := []struct {
		status       int
		wantAttempts int // with MaxAttempts 3
	}{
		{200, 1}, {400, 1}, {401, 1}, {403, 1}, {404, 1}, {406, 1}, {409, 3}, {500, 3}, {503, 3},
	}
	calls := []struct {
		name   string
		method string
		call   func(ctx context.Context, c *Client) error
		prefix string
	}{
		{"GET", "GET", func(ctx context.Context, c *Client) error { _, err := c.GetDB(ctx, 3, "uid"); return err }, "get db 3 on cluster-a: "},
		{"PUT", "PUT", func(ctx context.Context, c *Client) error {
			_, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, true)
			return err
		}, "validate update of db 3 on cluster-a: "},
	}
	for _, call := range calls {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s %d", call.name, tc.status), func(t *testing.T) {
				resp := body
				if tc.status == 200 {
					resp = `{"uid":3}`
				}
				s := startServer(t, always(tc.status, resp))
				c, h := newClient(t, s, maxAttempts(3))
				err := call.call(t.Context(), c)
				if got := s.count(); got != tc.wantAttempts {
					t.Errorf("attempts = %d, want %d", got, tc.wantAttempts)
				}
				wantSleeps := []time.Duration(nil)
				if tc.wantAttempts == 3 {
					wantSleeps = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
				}
				if d := cmp.Diff(wantSleeps, h.slept()); d != "" {
					t.Errorf("sleeps (-want +got):\n%s", d)
				}
				if tc.status == 200 {
					if err != nil {
						t.Fatalf("err = %v", err)
					}
					return
				}
				var apiErr *reapi.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v, want a *reapi.Error", err)
				}
				want := &reapi.Error{Method: call.method, Path: "/v1/bdbs/3", StatusCode: tc.status, Code: "some_code", Message: "some message"}
				if d := cmp.Diff(want, apiErr); d != "" {
					t.Errorf("api error (-want +got):\n%s", d)
				}
				if !strings.HasPrefix(err.Error(), call.prefix) {
					t.Errorf("error %q should start with %q", err, call.prefix)
				}
			})
		}
	}
}

func TestConflictStormThenSuccess(t *testing.T) {
	schedule := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second, 5 * time.Second}
	for _, n := range []int{1, 5, 8} {
		t.Run(fmt.Sprintf("%d conflicts", n), func(t *testing.T) {
			s := startServer(t, func(w http.ResponseWriter, _ *http.Request, i int) {
				if i < n {
					writeJSON(w, 409, `{"error_code":"busy","description":"another change is running"}`)
					return
				}
				writeJSON(w, 200, `{"uid":3,"status":"active-change-pending"}`)
			})
			c, h := newClient(t, s)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // sleeps are simulated
			defer cancel()
			db, err := c.UpdateDB(ctx, 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSReplicaSSL)}, false)
			if err != nil {
				t.Fatalf("UpdateDB: %v", err)
			}
			if db.Status != reapi.DBStatusChangePending {
				t.Errorf("status = %q", db.Status)
			}
			if got := s.count(); got != n+1 {
				t.Errorf("attempts = %d, want %d", got, n+1)
			}
			if d := cmp.Diff(schedule[:n], h.slept()); d != "" {
				t.Errorf("sleeps (-want +got):\n%s", d)
			}
			for _, r := range s.requests() {
				if d := jsonDiff(t, `{"tls_mode":"replica_ssl"}`, r.Body); d != "" {
					t.Errorf("a retried PUT must resend the same body (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestNoDeadlineStillStops(t *testing.T) {
	s := startServer(t, always(503, `{"error_code":"node_unavailable"}`))
	c, _ := newClient(t, s)
	_, err := c.GetCluster(t.Context()) // no deadline, MaxAttempts 0
	var apiErr *reapi.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
		t.Fatalf("err = %v, want a 503 *reapi.Error", err)
	}
	if got := s.count(); got != attemptsWithoutDeadline {
		t.Errorf("attempts = %d, want %d", got, attemptsWithoutDeadline)
	}
}

func TestDeadline(t *testing.T) {
	t.Run("simulated clock: stops before the sleep that would cross the deadline", func(t *testing.T) {
		s := startServer(t, always(409, `{"error_code":"busy"}`))
		// The whole time left is the call's (TestCallBudget covers smaller shares).
		c, h := newClient(t, s, func(c *Config) { c.CallShare = 1 })
		base := time.Now()
		c.now = func() time.Time {
			var slept time.Duration
			for _, d := range h.slept() {
				slept += d
			}
			return base.Add(slept)
		}
		ctx, cancel := context.WithDeadline(t.Context(), base.Add(30*time.Second))
		defer cancel()
		_, err := c.GetDB(ctx, 3)
		// Sleeps 0.2+0.4+0.8+1.6+3.2+5+5+5+5 = 26.2s; one more 5s would end at 31.2s > 30s.
		want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
			1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
		if d := cmp.Diff(want, h.slept()); d != "" {
			t.Errorf("sleeps (-want +got):\n%s", d)
		}
		if got := s.count(); got != 10 {
			t.Errorf("attempts = %d, want 10", got)
		}
		checkDeadlineErr(t, err)
	})
	t.Run("real clock", func(t *testing.T) {
		s := startServer(t, always(409, `{"error_code":"busy"}`))
		c, err := New(Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM,
			Retry: RetryPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		deadline, _ := ctx.Deadline()
		_, err = c.GetDB(ctx, 3)
		// Generous slack: this only catches a client that ignores the deadline, not a slow machine.
		if late := time.Since(deadline); late > 10*time.Second {
			t.Errorf("returned %v after the deadline", late)
		}
		if s.count() < 2 {
			t.Errorf("only %d attempts in 2s; the 409 was not retried", s.count())
		}
		checkDeadlineErr(t, err)
	})
}

func checkDeadlineErr(t *testing.T, err error) {
	t.Helper()
	var apiErr *reapi.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 409 || apiErr.Code != "busy" {
		t.Errorf("err = %v, want it to wrap the last 409 *reapi.Error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err = %v, want it to mention the deadline and match context.DeadlineExceeded", err)
	}
	if !strings.HasPrefix(fmt.Sprint(err), "get db 3 on cluster-a: ") {
		t.Errorf("err = %v, want it wrapped with the call", err)
	}
}

// hangUp answers with a truncated response (partial=true) or nothing at all, then closes.
func hangUp(t *testing.T, w http.ResponseWriter, partial bool) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if partial {
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"uid\":")
		_ = buf.Flush()
	}
	_ = conn.Close()
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	tests := []struct {
		name    string
		partial bool
		put     bool
	}{
		{name: "GET, connection closed mid-response", partial: true},
		{name: "GET, connection closed before any response"},
		{name: "PUT, connection closed mid-response", partial: true, put: true},
		{name: "PUT, connection closed before any response", put: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 0 {
					hangUp(t, w, tc.partial)
					return
				}
				writeJSON(w, 200, `{"uid":3,"status":"active"}`)
			})
			c, h := newClient(t, s, maxAttempts(3))
			var db reapi.DB
			var err error
			if tc.put {
				db, err = c.UpdateDB(t.Context(), 3, reapi.DBUpdate{TLSMode: ptr(reapi.TLSEnabled)}, false)
			} else {
				db, err = c.GetDB(t.Context(), 3)
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d := cmp.Diff(reapi.DB{UID: 3, Status: "active"}, db); d != "" {
				t.Errorf("db (-want +got):\n%s", d)
			}
			if got := s.count(); got != 2 {
				t.Errorf("attempts = %d, want 2", got)
			}
			if got := len(h.slept()); got != 1 {
				t.Errorf("sleeps = %d, want 1", got)
			}
		})
	}
	t.Run("connection refused, retried up to MaxAttempts", func(t *testing.T) {
		s := startServer(t, always(200, `{}`))
		c, h := newClient(t, s, maxAttempts(3))
		s.Close()
		_, err := c.GetCluster(t.Context())
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "giving up after 3 attempts") {
			t.Errorf("err = %v, want connection refused after 3 attempts", err)
		}
		if got := len(h.slept()); got != 2 {
			t.Errorf("sleeps = %d, want 2", got)
		}
	})
	t.Run("server speaking plain HTTP is not retried", func(t *testing.T) {
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, `{}`) }))
		defer plain.Close()
		s := startServer(t, always(200, `{}`))
		c, h := newClient(t, s, func(c *Config) { c.URL = strings.Replace(plain.URL, "http:", "https:", 1) })
		_, err := c.GetCluster(t.Context())
		if !errors.Is(err, http.ErrSchemeMismatch) {
			t.Errorf("err = %v, want http.ErrSchemeMismatch", err)
		}
		if got := len(h.slept()); got != 0 {
			t.Errorf("sleeps = %d, want 0", got)
		}
	})
}

func TestDecodeErrorIsNotRetried(t *testing.T) {
	s := startServer(t, always(200, `{"uid":"three"}`))
	c, h := newClient(t, s, maxAttempts(3))
	_, err := c.GetDB(t.Context(), 3)
	if err == nil || !strings.Contains(err.Error(), "get db 3 on cluster-a: GET /v1/bdbs/3: decode response") {
		t.Errorf("err = %v, want a wrapped decode error", err)
	}
	if s.count() != 1 || len(h.slept()) != 0 {
		t.Errorf("attempts = %d, sleeps = %d; want 1 and 0", s.count(), len(h.slept()))
	}
}

func TestErrorBody(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name     string
		body     string
		wantCode string
		wantMsg  string
	}{
		{"message", `{"error_code":"invalid_certificate","message":"bad cert"}`, "invalid_certificate", "bad cert"},
		{"description", `{"error_code":"bdb_not_exist","description":"Database does not exist"}`, "bdb_not_exist", "Database does not exist"},
		{"message wins over description", `{"error_code":"x","message":"m","description":"d"}`, "x", "m"},
		{"neither", `{"error_code":"busy"}`, "busy", ""},
		{"empty object", `{}`, "", ""},
		{"empty body", ``, "", ""},
		{"non-JSON body", "<html><body>\n502 Bad Gateway\n</body></html>\n", "", "<html><body> 502 Bad Gateway </body></html>"},
		{"JSON that is not an object", `"oops"`, "", `"oops"`},
		{"numeric error code", `{"error_code":42,"message":"n"}`, "42", "n"},
		{"long message is capped", `{"message":"` + long + `"}`, "", strings.Repeat("x", maxMessageLen) + "…"},
		{"echoed password is redacted", `{"message":"cannot reach redis://admin:` + testPass + `@h:1"}`, "", "cannot reach redis://admin:<redacted>@h:1"},
		{"key material is withheld", `{"message":"bad key -----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----"}`, "", "(withheld: the server's message contains key material)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.WriteHeader(400)
				_, _ = w.Write([]byte(tc.body))
			})
			c, _ := newClient(t, s)
			_, err := c.GetCluster(t.Context())
			var apiErr *reapi.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *reapi.Error", err)
			}
			want := &reapi.Error{Method: "GET", Path: "/v1/cluster", StatusCode: 400, Code: tc.wantCode, Message: tc.wantMsg}
			if d := cmp.Diff(want, apiErr); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPinning(t *testing.T) {
	ca := newCert(t, certOpts{isCA: true})
	leafFromCA := newCert(t, certOpts{parent: &ca})
	selfSigned := newCert(t, certOpts{})
	stranger := newCert(t, certOpts{})
	wrongName := newCert(t, certOpts{dns: []string{"cluster.example.com"}})
	insecure := func(c *Config) {
		c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	bypassDialer := func(c *Config) {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
				return d.DialContext(ctx, network, addr)
			},
		}}
	}
	tests := []struct {
		name     string
		server   testCert
		pin      string
		mod      func(*Config)
		wantErr  string
		wantType any // pointer to the error type errors.As must find
	}{
		{name: "pinned self-signed certificate", server: selfSigned, pin: selfSigned.pem},
		{name: "pinned CA, server cert signed by it", server: leafFromCA, pin: ca.pem},
		{name: "a different self-signed certificate", server: selfSigned, pin: stranger.pem,
			wantErr: "certificate signed by unknown authority", wantType: new(*tls.CertificateVerificationError)},
		{name: "caller's InsecureSkipVerify is overridden", server: selfSigned, pin: stranger.pem, mod: insecure,
			wantErr: "certificate signed by unknown authority", wantType: new(*tls.CertificateVerificationError)},
		{name: "caller's custom TLS dialer is dropped", server: selfSigned, pin: stranger.pem, mod: bypassDialer,
			wantErr: "certificate signed by unknown authority", wantType: new(*tls.CertificateVerificationError)},
		{name: "pinned certificate for another host name", server: wrongName, pin: wrongName.pem,
			wantErr: "127.0.0.1", wantType: new(x509.HostnameError)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServerWithCert(t, tc.server, always(200, `{"name":"a"}`))
			mods := []func(*Config){func(c *Config) { c.CACert = tc.pin }}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			c, h := newClient(t, s, mods...)
			_, err := c.GetCluster(t.Context())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if s.count() != 1 {
					t.Errorf("server saw %d requests", s.count())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if !errors.As(err, tc.wantType) {
				t.Errorf("err = %v (%T), want errors.As %T", err, err, tc.wantType)
			}
			if s.count() != 0 || len(h.slept()) != 0 {
				t.Errorf("requests = %d, sleeps = %d: a TLS verification failure must not reach the handler nor be retried", s.count(), len(h.slept()))
			}
		})
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	withLog := func(c *Config) { c.Logger = logger }
	key := newCert(t, certOpts{}).keyPEM(t)
	authHeader := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPass))

	scenario := func(status int, body string, mods ...func(*Config)) *Client {
		s := startServer(t, always(status, body))
		c, _ := newClient(t, s, append([]func(*Config){withLog, maxAttempts(2)}, mods...)...)
		return c
	}
	srcWithPass := []reapi.ReplicaSource{{UID: 1, URI: "redis://admin:" + testPass + "@src:12000", Encryption: true}}
	var errs []error
	record := func(_ any, err error) { errs = append(errs, err) }
	ctx := t.Context()

	for _, url := range []string{
		"https://admin:" + testPass + "@127.0.0.1:9443",
		"https://admin:" + testPass + "@127.0.0.1:94x3",
		"http://admin:" + testPass + "@127.0.0.1:9443",
		"https://127.0.0.1:9443/?password=" + testPass,
	} {
		record(New(Config{Name: "x", URL: url, Username: testUser, Password: testPass, CACert: "-", Logger: logger}))
	}
	record(scenario(401, `{"error_code":"unauthorized","message":"bad credentials"}`).GetDB(ctx, 3))
	record(scenario(400, `{"message":"invalid uri redis://admin:`+testPass+`@src:12000"}`).UpdateDB(ctx, 3, reapi.DBUpdate{ReplicaSources: &srcWithPass}, false))
	record(scenario(406, `{"message":"bad key `+strings.ReplaceAll(key, "\n", " ")+`"}`).UpdateDB(ctx, 3, reapi.DBUpdate{ReplicaSources: &srcWithPass}, true))
	record(scenario(503, `{}`).GetCluster(ctx))
	record(scenario(200, `{"uid":"`+testPass+`"}`).GetDB(ctx, 3))
	record(scenario(200, `{}`).UpdateDB(ctx, 3, reapi.DBUpdate{}, false))
	errs = append(errs, scenario(400, `{"error_code":"invalid_certificate"}`).UpdateCertificate(ctx, reapi.CertUpdate{Name: "syncer", Certificate: "C", Key: key}))
	errs = append(errs, scenario(404, `{}`).UpdateCertificate(ctx, reapi.CertUpdate{Name: "syncer", Certificate: "C", Key: key}))
	record(scenario(200, `{"action_uid":"a","status":"failed","error":"auth failed for redis://admin:`+testPass+`@src"}`).WaitForDB(ctx, 3, "a", time.Millisecond))
	record(scenario(409, `{"error_code":"busy"}`).GetDB(ctx, 3)) // gives up after MaxAttempts
	{
		c := scenario(409, `{"error_code":"busy"}`, maxAttempts(0))
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		c.sleep = sleepCtx
		record(c.GetDB(dctx, 3))
		cancel()
	}
	{
		s := startServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { hangUp(t, w, true) })
		c, _ := newClient(t, s, withLog, maxAttempts(2))
		record(c.GetDB(ctx, 3))
		s.Close()
		record(c.GetDB(ctx, 3)) // connection refused
	}
	{
		s := startServer(t, always(200, `{}`))
		c, _ := newClient(t, s, withLog, func(c *Config) { c.CACert = newCert(t, certOpts{}).pem })
		record(c.GetCluster(ctx))
	}

	for i, err := range errs {
		if err == nil {
			t.Errorf("scenario %d: expected an error", i)
			continue
		}
		msg := err.Error()
		for _, secret := range []string{testPass, authHeader, "PRIVATE KEY", "MHcC"} {
			if strings.Contains(msg, secret) {
				t.Errorf("scenario %d: error contains secret %q: %s", i, secret, msg)
			}
		}
	}
	out := logs.String()
	for _, secret := range []string{testPass, authHeader, "Basic ", "PRIVATE KEY"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain secret %q:\n%s", secret, out)
		}
	}
	// The log is useful: one line per attempt with method, path, status, attempt and duration.
	for _, want := range []string{"method=GET path=/v1/bdbs/3 status=401 attempt=1 duration=", "status=503 attempt=2", "error_code=unauthorized"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestConfigAndClientNeverPrintThePassword(t *testing.T) {
	s := startServer(t, always(200, `{}`))
	cfg := Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, &cfg, c} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, testPass) || !strings.Contains(out, "cluster-a") {
				t.Errorf("Sprintf(%q, %T) = %s", format, v, out)
			}
		}
	}
}
