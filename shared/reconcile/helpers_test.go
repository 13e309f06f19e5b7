package reconcile

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/audit/schema"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// testNow is every test's clock.
func testNow() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

type certSpec struct {
	cn        string
	ou        string
	eku       []x509.ExtKeyUsage // nil: serverAuth + clientAuth, like Redis Enterprise's
	notBefore time.Time          // zero: a month before testNow
	notAfter  time.Time          // zero: a year after notBefore
}

// testCert is a generated certificate: its PEM and fingerprint.
type testCert struct {
	PEM string
	FP  string
}

func newCert(t testing.TB, s certSpec) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s.eku == nil {
		s.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if s.notBefore.IsZero() {
		s.notBefore = testNow().AddDate(0, -1, 0)
	}
	if s.notAfter.IsZero() {
		s.notAfter = s.notBefore.AddDate(1, 0, 0)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.cn, OrganizationalUnit: []string{s.ou}, Organization: []string{certs.DefaultOrganization}},
		DNSNames:     []string{s.cn, "*." + s.cn},
		NotBefore:    s.notBefore,
		NotAfter:     s.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  s.eku,
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cc := certs.FromX509(c)
	return testCert{PEM: cc.PEM, FP: cc.Fingerprint}
}

func syncerCert(t testing.TB, fqdn string) testCert {
	t.Helper()
	return newCert(t, certSpec{cn: fqdn, ou: "syncer"})
}

func proxyCert(t testing.TB, fqdn string) testCert {
	t.Helper()
	return newCert(t, certSpec{cn: fqdn, ou: "redisdb"})
}

// privateKeyPEM is a real PKCS#8 key, the kind of thing that must never leak.
func privateKeyPEM(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func csrPEM(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// reformat gives the same certificate different whitespace: CRLF line endings, indentation, blank
// lines around it.
func reformat(pemText string) string {
	lines := strings.Split(strings.TrimSpace(pemText), "\n")
	return "\r\n  " + strings.Join(lines, "\r\n") + "\r\n\r\n"
}

func version(id string, c testCert, stages ...string) CertVersion {
	return CertVersion{VersionID: id, Stages: stages, Certificate: c.PEM, Created: testNow().AddDate(0, -1, 0)}
}

// ---- fakes ----

// The production audit recorder is what the reconciler is written against.
var _ Auditor = (*audit.Recorder)(nil)

// fakeCluster is an in-memory cluster API. Hooks change its behaviour per test.
type fakeCluster struct {
	mu     sync.Mutex
	name   string
	fqdn   string
	syncer string
	proxy  string
	dbs    []reapi.DB
	trace  *traceLog // shared by every cluster of a test, to assert ordering

	failGetCluster error
	failList       error
	// updateErr fails UpdateDB before it changes anything.
	updateErr func(uid int, dryRun bool) error
	// applyUpdate changes the stored DB; nil means the real partial-update semantics.
	applyUpdate func(db *reapi.DB, upd reapi.DBUpdate)
	// afterWrite runs after a (non dry-run) update was applied: a concurrent writer.
	afterWrite func(n int, db *reapi.DB)

	listFields [][]string
	getFields  [][]string
	writes     int
	dryRuns    int
	calls      int
}

func (c *fakeCluster) Name() string { return c.name }

func (c *fakeCluster) note(s string) {
	c.calls++
	if c.trace != nil {
		c.trace.add(c.name + " " + s)
	}
}

// traceLog records calls across clusters, which LoadFleet reads concurrently.
type traceLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *traceLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *traceLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func (l *traceLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = nil
}

func (c *fakeCluster) find(uid int) (*reapi.DB, error) {
	for i := range c.dbs {
		if c.dbs[i].UID == uid {
			return &c.dbs[i], nil
		}
	}
	return nil, &reapi.Error{Method: "GET", Path: fmt.Sprintf("/v1/bdbs/%d", uid), StatusCode: 404, Code: "bdb_not_exist"}
}

func (c *fakeCluster) ListDBs(_ context.Context, fields ...string) ([]reapi.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.note("LIST")
	c.listFields = append(c.listFields, fields)
	if c.failList != nil {
		return nil, c.failList
	}
	out := make([]reapi.DB, len(c.dbs))
	for i, db := range c.dbs {
		out[i] = cloneDB(db)
	}
	return out, nil
}

func (c *fakeCluster) GetDB(_ context.Context, uid int, fields ...string) (reapi.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.note(fmt.Sprintf("GET %d", uid))
	c.getFields = append(c.getFields, fields)
	db, err := c.find(uid)
	if err != nil {
		return reapi.DB{}, err
	}
	return cloneDB(*db), nil
}

func (c *fakeCluster) UpdateDB(_ context.Context, uid int, upd reapi.DBUpdate, dryRun bool) (reapi.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dryRun {
		c.note(fmt.Sprintf("PUT %d dry-run", uid))
		c.dryRuns++
	} else {
		c.note(fmt.Sprintf("PUT %d", uid))
		c.writes++
	}
	if c.updateErr != nil {
		if err := c.updateErr(uid, dryRun); err != nil {
			return reapi.DB{}, err
		}
	}
	db, err := c.find(uid)
	if err != nil {
		return reapi.DB{}, err
	}
	if dryRun {
		return cloneDB(*db), nil
	}
	if c.applyUpdate != nil {
		c.applyUpdate(db, upd)
	} else {
		applyDBUpdate(db, upd)
	}
	db.ActionUID = fmt.Sprintf("action-%d", c.writes)
	if c.afterWrite != nil {
		c.afterWrite(c.writes, db)
	}
	return cloneDB(*db), nil
}

func (c *fakeCluster) GetCluster(context.Context) (reapi.Cluster, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.note("GET cluster")
	if c.failGetCluster != nil {
		return reapi.Cluster{}, c.failGetCluster
	}
	return reapi.Cluster{Name: c.fqdn, SyncerCertificate: c.syncer, ProxyCertificate: c.proxy}, nil
}

func (c *fakeCluster) WaitForDB(_ context.Context, uid int, _ string, _ time.Duration) (reapi.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.note(fmt.Sprintf("WAIT %d", uid))
	db, err := c.find(uid)
	if err != nil {
		return reapi.DB{}, err
	}
	return cloneDB(*db), nil
}

func (c *fakeCluster) db(uid int) reapi.DB {
	c.mu.Lock()
	defer c.mu.Unlock()
	db, err := c.find(uid)
	if err != nil {
		return reapi.DB{}
	}
	return cloneDB(*db)
}

// applyDBUpdate is PUT's partial-update semantics: sent fields replace, the rest stay.
func applyDBUpdate(db *reapi.DB, upd reapi.DBUpdate) {
	if upd.TLSMode != nil {
		db.TLSMode = *upd.TLSMode
	}
	if upd.EnforceClientAuthentication != nil {
		db.EnforceClientAuthentication = *upd.EnforceClientAuthentication
	}
	if upd.AuthenticationSSLClientCerts != nil {
		db.AuthenticationSSLClientCerts = slices.Clone(*upd.AuthenticationSSLClientCerts)
	}
	if upd.ReplicaSources != nil {
		next := slices.Clone(*upd.ReplicaSources)
		// Read-only status survives a PUT, as on a real cluster.
		for i := range next {
			for _, old := range db.ReplicaSources {
				if old.UID == next[i].UID {
					next[i].Status, next[i].LastError, next[i].Lag = old.Status, old.LastError, old.Lag
				}
			}
		}
		db.ReplicaSources = next
	}
}

func cloneDB(db reapi.DB) reapi.DB {
	db.AuthenticationSSLClientCerts = slices.Clone(db.AuthenticationSSLClientCerts)
	db.ReplicaSources = slices.Clone(db.ReplicaSources)
	db.Endpoints = slices.Clone(db.Endpoints)
	return db
}

type fakeRegistry struct {
	clusters map[string]*fakeCluster
	namesErr error
}

func (r *fakeRegistry) ClusterNames(context.Context) ([]string, error) {
	if r.namesErr != nil {
		return nil, r.namesErr
	}
	var out []string
	for n := range r.clusters {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

func (r *fakeRegistry) Client(_ context.Context, name string) (ClusterAPI, error) {
	c, ok := r.clusters[name]
	if !ok {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrUnknownCluster)
	}
	return c, nil
}

// fakeCerts is Secrets Manager as func fields over maps.
type fakeCerts struct {
	mu      sync.Mutex
	syncer  map[string][]CertVersion
	proxy   map[string]CertVersion
	clients map[LinkEnd][]string
	reads   int
}

func (f *fakeCerts) SyncerVersions(_ context.Context, cluster string) ([]CertVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	v, ok := f.syncer[cluster]
	if !ok {
		return nil, fmt.Errorf("syncer secret of %s: %w", cluster, ErrNoCertificate)
	}
	return v, nil
}

func (f *fakeCerts) ProxyCurrent(_ context.Context, cluster string) (CertVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	v, ok := f.proxy[cluster]
	if !ok {
		return CertVersion{}, fmt.Errorf("proxy secret of %s: %w", cluster, ErrNoCertificate)
	}
	return v, nil
}

func (f *fakeCerts) ClientCerts(_ context.Context, cluster string, uid int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.clients[LinkEnd{cluster, uid}], nil
}

// fakeAuditor keeps every event as the reconciler handed it over (to scan for secrets), passes it
// through the real audit.Recorder and checks what that would publish against the JSON Schema; any
// secret material in an event fails the test too.
// reject, when set, refuses some events, as a failing EventBridge would.
type fakeAuditor struct {
	mu      sync.Mutex
	events  []audit.Event
	reject  func(audit.Event) error
	rec     *audit.Recorder
	sink    *audit.Memory
	valid   *schema.Validator
	invalid []error
}

// newAuditor returns an auditor whose schema violations fail the test when it ends.
func newAuditor(t testing.TB) *fakeAuditor {
	t.Helper()
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAuditor{sink: &audit.Memory{}, valid: v}
	a.rec = audit.NewRecorder(a.sink, audit.Run{Actor: "reconcile-test", Trigger: audit.Trigger{Kind: "test"}}, testNow)
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, err := range a.invalid {
			t.Errorf("invalid audit event: %v", err)
		}
	})
	return a
}

func (a *fakeAuditor) Record(ctx context.Context, e audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reject != nil {
		if err := a.reject(e); err != nil {
			return err
		}
	}
	if err := a.rec.Record(ctx, e); err != nil {
		return err
	}
	published := a.sink.Events()
	body, err := json.Marshal(published[len(published)-1])
	if err == nil {
		err = a.valid.Validate(body)
	}
	if err != nil {
		a.invalid = append(a.invalid, fmt.Errorf("%s %s: %w", e.Step, e.Outcome, err))
	}
	// Scan what the reconciler handed over, before the Recorder's own redaction could hide a leak.
	raw, _ := json.Marshal(e)
	clean := strings.ReplaceAll(string(raw), "://admin:[redacted]@", "") // the redactor keeps the user
	for _, bad := range []string{"PRIVATE KEY", "BEGIN", "s3cr3t-pass", "://admin:", "://user:pass@"} {
		if strings.Contains(clean, bad) {
			a.invalid = append(a.invalid, fmt.Errorf("%s %s event holds %q", e.Step, e.Outcome, bad))
		}
	}
	a.events = append(a.events, e)
	return nil
}

// reset forgets the events recorded so far.
func (a *fakeAuditor) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = nil
}

// outcomes lists "step outcome cluster/db" for every accepted event.
func (a *fakeAuditor) outcomes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, fmt.Sprintf("%s %s %s/%d", e.Step, e.Outcome, e.Cluster, e.Database))
	}
	return out
}

// sweepPolicy is the policy of a run that read the whole fleet (the sweep): it may remove certificates.
func sweepPolicy() Policy { return Policy{Scope: ScopeReplica, ClientAuth: true, Prune: true} }
