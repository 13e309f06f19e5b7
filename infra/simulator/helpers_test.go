package simulator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// startSim builds and starts a simulator and stops it when the test ends.
func startSim(t *testing.T, topo Topology, opts Options) *Sim {
	t.Helper()
	s, err := New(topo, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func demo(t *testing.T) Topology {
	t.Helper()
	topo, err := DemoTopology()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// startDemo starts the demo topology with actions that complete only through CompleteActions, so no
// test depends on timing.
func startDemo(t *testing.T, opts Options) (*Sim, *ClusterHandle, *ClusterHandle) {
	t.Helper()
	if opts.ActionDuration == 0 {
		opts.ActionDuration = -1
	}
	s := startSim(t, demo(t), opts)
	return s, s.Cluster("east"), s.Cluster("west")
}

// client is a plain net/http client that pins one cluster's API certificate.
type client struct {
	t          *testing.T
	base       string
	user, pass string
	hc         *http.Client
}

func pinnedHTTP(t *testing.T, certPEM string, keepAlive bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(certPEM)) {
		t.Fatal("pin: no certificate in PEM")
	}
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func adminClient(t *testing.T, h *ClusterHandle) *client {
	t.Helper()
	return &client{t: t, base: h.URL, user: h.AdminUser, pass: h.AdminPassword, hc: pinnedHTTP(t, h.APICertPEM, true)}
}

func viewerClient(t *testing.T, h *ClusterHandle) *client {
	t.Helper()
	return &client{t: t, base: h.URL, user: h.ViewerUser, pass: h.ViewerPassword, hc: pinnedHTTP(t, h.APICertPEM, true)}
}

// do sends a request; body may be nil, a string (sent as is) or a value to marshal.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	status, b, err := c.try(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return status, b
}

func (c *client) try(method, path string, body any) (int, []byte, error) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// want asserts the status and decodes the body into v (if not nil).
func (c *client) want(status int, method, path string, body, v any) {
	c.t.Helper()
	got, b := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// apiErr is an error body.
type apiErr struct {
	Code        string `json:"error_code"`
	Description string `json:"description"`
	Message     string `json:"message"`
}

// tDB is the test's own reading of a bdb object.
type tDB struct {
	UID                          int        `json:"uid"`
	Name                         string     `json:"name"`
	Status                       string     `json:"status"`
	ActionUID                    string     `json:"action_uid"`
	TLSMode                      string     `json:"tls_mode"`
	EnforceClientAuthentication  string     `json:"enforce_client_authentication"`
	AuthenticationSSLClientCerts []tCert    `json:"authentication_ssl_client_certs"`
	MTLSAllowOutdatedCerts       bool       `json:"mtls_allow_outdated_certs"`
	ReplicaSources               []tSource  `json:"replica_sources"`
	ReplicaSync                  string     `json:"replica_sync"`
	Endpoints                    []tEnpoint `json:"endpoints"`
}

type tCert struct {
	ClientCert string `json:"client_cert"`
}

type tEnpoint struct {
	DNSName string   `json:"dns_name"`
	Port    int      `json:"port"`
	Addr    []string `json:"addr"`
}

type tSource struct {
	UID         int    `json:"uid"`
	URI         string `json:"uri"`
	Encryption  bool   `json:"encryption"`
	ServerCert  string `json:"server_cert,omitempty"`
	ClientCert  string `json:"client_cert,omitempty"`
	ClientKey   string `json:"client_key,omitempty"`
	Compression int    `json:"compression"`
	Status      string `json:"status,omitempty"`
	Lag         int64  `json:"lag,omitempty"`
	LastError   string `json:"last_error,omitempty"`
}

// dbOf reads a database through the handle (a read, like GET).
func dbOf(t *testing.T, h *ClusterHandle, uid int) tDB {
	t.Helper()
	raw, err := h.DB(uid)
	if err != nil {
		t.Fatal(err)
	}
	var d tDB
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// linkOf returns the first replica source of the database, as a read shows it.
func linkOf(t *testing.T, h *ClusterHandle, uid int) tSource {
	t.Helper()
	d := dbOf(t, h, uid)
	if len(d.ReplicaSources) == 0 {
		t.Fatalf("%s db %d has no replica source", h.Name, uid)
	}
	return d.ReplicaSources[0]
}

// clock is a settable Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// genCert issues a syncer-profile certificate for fqdn valid from notBefore for validity.
func genCert(t testing.TB, fqdn string, notBefore time.Time, validity time.Duration) certs.KeyPair {
	t.Helper()
	kp, err := certs.Generate(certs.Profile{FQDN: fqdn, Kind: certs.KindSyncer, NotBefore: notBefore,
		Validity: validity, KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func freshCert(t *testing.T, fqdn string) certs.KeyPair {
	t.Helper()
	return genCert(t, fqdn, time.Now(), 365*24*time.Hour)
}

func expiredCert(t *testing.T, fqdn string) certs.KeyPair {
	t.Helper()
	return genCert(t, fqdn, time.Now().Add(-2*365*24*time.Hour), 365*24*time.Hour)
}

// csrPEM is a certificate signing request: PEM, but not a certificate.
func csrPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// waitFor polls cond until it holds; the deadline only guards against a hang, it asserts no speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func localhostIPs() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1)} }
