package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Credentials every test client uses; tests assert they never leak.
const (
	testUser = "ops@example.com"
	testPass = "Zq8-very-secret-Pa55"
)

// testCert is a generated certificate with its key.
type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func (c testCert) tlsCert() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
}

func (c testCert) keyPEM(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// certOpts shapes a generated certificate.
type certOpts struct {
	parent *testCert // nil = self-signed
	isCA   bool
	ips    []net.IP // default 127.0.0.1
	dns    []string
}

// newCert makes an ECDSA P-256 certificate valid for an hour around now.
func newCert(t testing.TB, o certOpts) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test cluster api", Organization: []string{"replica-tls tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  o.ips,
		DNSNames:     o.dns,
	}
	if o.isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	} else if tmpl.IPAddresses == nil && tmpl.DNSNames == nil {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	parent, signer := tmpl, key
	if o.parent != nil {
		parent, signer = o.parent.cert, o.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// request is what the test server saw.
type request struct {
	Method, Path, Query, Body, ContentType string
	User, Pass                             string
	HasAuth                                bool
}

// apiServer is an HTTPS test server recording every request it handles.
type apiServer struct {
	*httptest.Server
	CAPEM string // the server's own self-signed certificate: what clients pin

	mu   sync.Mutex
	reqs []request
}

// respond handles request number n (0-based, counting every request the server saw).
type respond func(w http.ResponseWriter, r *http.Request, n int)

// startServer starts an HTTPS server on 127.0.0.1 with a fresh self-signed certificate.
func startServer(t testing.TB, h respond) *apiServer {
	t.Helper()
	return startServerWithCert(t, newCert(t, certOpts{}), h)
}

func startServerWithCert(t testing.TB, cert testCert, h respond) *apiServer {
	t.Helper()
	s := &apiServer{CAPEM: cert.pem}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, request{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body),
			ContentType: r.Header.Get("Content-Type"), User: user, Pass: pass, HasAuth: ok,
		})
		s.mu.Unlock()
		h(w, r, n)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert.tlsCert()}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected in pinning tests
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func (s *apiServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// hooks records the sleeps a client asked for instead of sleeping.
type hooks struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (h *hooks) slept() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

// newClient returns a client for s with instant, recorded sleeps and jitter pinned to the upper
// bound, so the backoff schedule is observable. mods adjust the Config first.
func newClient(t testing.TB, s *apiServer, mods ...func(*Config)) (*Client, *hooks) {
	t.Helper()
	cfg := Config{Name: "cluster-a", URL: s.URL, Username: testUser, Password: testPass, CACert: s.CAPEM}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &hooks{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		h.mu.Lock()
		h.sleeps = append(h.sleeps, d)
		h.mu.Unlock()
		return ctx.Err()
	}
	c.jitter = func(limit time.Duration) time.Duration { return limit }
	return c, h
}

func maxAttempts(n int) func(*Config) {
	return func(c *Config) { c.Retry.MaxAttempts = n }
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// always answers every request the same way.
func always(status int, body string) respond {
	return func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, status, body) }
}

// jsonDiff compares two JSON documents structurally.
func jsonDiff(t testing.TB, want, got string) string {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v\n%s", err, want)
	}
	if got == "" {
		return "got an empty body, want " + want
	}
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return "got a non-JSON body: " + got
	}
	return cmp.Diff(w, g)
}

func ptr[T any](v T) *T { return &v }
