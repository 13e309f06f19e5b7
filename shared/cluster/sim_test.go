package cluster_test

// The client against the cluster simulator (a second, independent reading of the REST API) over
// real HTTPS with the simulator's API certificate pinned.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/cluster"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

func startSim(t *testing.T, opts simulator.Options) *simulator.Sim {
	t.Helper()
	topo, err := simulator.DemoTopology()
	if err != nil {
		t.Fatal(err)
	}
	s, err := simulator.New(topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func client(t *testing.T, info simulator.ClusterInfo, user, pass, ca string) *cluster.Client {
	t.Helper()
	c, err := cluster.New(cluster.Config{Name: info.Name, URL: info.URL, Username: user, Password: pass, CACert: ca,
		Retry: cluster.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func admin(t *testing.T, s *simulator.Sim, name string) *cluster.Client {
	t.Helper()
	h := s.Cluster(name)
	return client(t, h.ClusterInfo, h.AdminUser, h.AdminPassword, h.APICertPEM)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func apiErr(t *testing.T, err error) *reapi.Error {
	t.Helper()
	var e *reapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *reapi.Error, got %v", err)
	}
	return e
}

func TestSimPinning(t *testing.T) {
	s := startSim(t, simulator.Options{})
	east, west := s.Cluster("east"), s.Cluster("west")
	if _, err := admin(t, s, "east").GetCluster(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("pinned to the right certificate: %v", err)
	}
	// Pinned to another cluster's API certificate: the TLS handshake must fail, and not be retried.
	wrong := client(t, east.ClusterInfo, east.AdminUser, east.AdminPassword, west.APICertPEM)
	before := east.TotalCalls()
	_, err := wrong.GetCluster(ctxT(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("wrong pin: want a certificate verification error, got %v", err)
	}
	if east.TotalCalls() != before {
		t.Errorf("a request reached the cluster through an unverified connection")
	}
}

func TestSimStatusCodes(t *testing.T) {
	s := startSim(t, simulator.Options{ActionDuration: 30 * time.Millisecond})
	east := s.Cluster("east")
	ctx := ctxT(t, 30*time.Second)
	good := admin(t, s, "east")

	// 401: wrong password; the password never shows in the error.
	bad := client(t, east.ClusterInfo, east.AdminUser, "not-the-password", east.APICertPEM)
	_, err := bad.ListDBs(ctx)
	if e := apiErr(t, err); e.StatusCode != 401 {
		t.Errorf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("error shows the password: %v", err)
	}
	// 403: the read-only user may read, not write.
	viewer := client(t, east.ClusterInfo, east.ViewerUser, east.ViewerPassword, east.APICertPEM)
	if _, err := viewer.GetDB(ctx, 1); err != nil {
		t.Errorf("viewer read: %v", err)
	}
	mode := reapi.TLSReplicaSSL
	_, err = viewer.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, false)
	if e := apiErr(t, err); e.StatusCode != 403 {
		t.Errorf("viewer write: %v", err)
	}
	// 404 with the documented error code.
	_, err = good.GetDB(ctx, 99)
	if e := apiErr(t, err); e.StatusCode != 404 || e.Code != "bdb_not_exist" {
		t.Errorf("unknown db: %v", err)
	}
	// 400 invalid_certificate: a private key where a certificate belongs; nothing changes.
	kp, err := certs.Generate(certs.Profile{FQDN: "x.example", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	list := []reapi.ClientCert{{ClientCert: kp.KeyPEM}}
	_, err = good.UpdateDB(ctx, 1, reapi.DBUpdate{AuthenticationSSLClientCerts: &list}, false)
	if e := apiErr(t, err); e.StatusCode != 400 || e.Code != "invalid_certificate" {
		t.Errorf("key as certificate: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error echoes key material: %v", err)
	}
	// 400 duplicated_certs.
	list = []reapi.ClientCert{{ClientCert: kp.CertPEM}, {ClientCert: kp.CertPEM}}
	_, err = good.UpdateDB(ctx, 1, reapi.DBUpdate{AuthenticationSSLClientCerts: &list}, true)
	if e := apiErr(t, err); e.StatusCode != 400 || e.Code != "duplicated_certs" {
		t.Errorf("duplicates: %v", err)
	}
	// 406 certificate_expired on a certificate update; tried exactly once.
	old, err := certs.Generate(certs.Profile{FQDN: "east.redis.local", Kind: certs.KindSyncer,
		NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour, KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	east.ResetCalls()
	err = good.UpdateCertificate(ctx, reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: old.CertPEM, Key: old.KeyPEM})
	if e := apiErr(t, err); e.StatusCode != 406 || e.Code != "certificate_expired" {
		t.Errorf("expired certificate: %v", err)
	}
	if n := east.Calls()["PUT /v1/cluster/certificates"]; n != 1 {
		t.Errorf("a 406 was sent %d times, want exactly once", n)
	}
	// dry_run validates and changes nothing.
	db, err := good.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, true)
	if err != nil || db.TLSMode != reapi.TLSReplicaSSL {
		t.Errorf("dry run: %v %+v", err, db)
	}
	if now, _ := good.GetDB(ctx, 1); now.TLSMode != reapi.TLSDisabled || now.Status != reapi.DBStatusActive {
		t.Errorf("dry run changed the database: %+v", now)
	}
}

func TestSimConflictsAreRiddenOutAndWaitedFor(t *testing.T) {
	s := startSim(t, simulator.Options{ActionDuration: 200 * time.Millisecond})
	c := admin(t, s, "east")
	ctx := ctxT(t, 30*time.Second)
	mode := reapi.TLSReplicaSSL
	db, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, false)
	if err != nil {
		t.Fatal(err)
	}
	if db.Status != reapi.DBStatusChangePending || db.ActionUID == "" {
		t.Fatalf("a PUT should leave the change pending with an action: %+v", db)
	}
	// A second change while the first is applied: 409 busy, retried until the action completes.
	on := reapi.Enabled
	if _, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{EnforceClientAuthentication: &on}, false); err != nil {
		t.Fatalf("the 409 storm should be ridden out: %v", err)
	}
	if n := s.Cluster("east").Calls()["PUT /v1/bdbs/{uid}"]; n < 3 {
		t.Errorf("want the busy PUT retried, saw %d PUTs", n)
	}
	final, err := c.WaitForDB(ctx, 1, "", 20*time.Millisecond)
	if err != nil || final.Status != reapi.DBStatusActive || final.TLSMode != reapi.TLSReplicaSSL || final.EnforceClientAuthentication != reapi.Enabled {
		t.Fatalf("after waiting: %v %+v", err, final)
	}
	// Transient 503s and dropped connections are retried too.
	s.Cluster("east").FailNext("GET /v1/bdbs/{uid}", 3, 503)
	s.Cluster("east").DropNext("GET /v1/cluster", 2)
	if _, err := c.GetDB(ctx, 1); err != nil {
		t.Errorf("503s: %v", err)
	}
	if _, err := c.GetCluster(ctx); err != nil {
		t.Errorf("dropped connections: %v", err)
	}
}

func TestSimDeadline(t *testing.T) {
	s := startSim(t, simulator.Options{})
	s.Cluster("east").SetErrorRate("GET /v1/bdbs", 1, 409)
	c := admin(t, s, "east")
	start := time.Now()
	_, err := c.ListDBs(ctxT(t, 500*time.Millisecond))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline to end an endless 409 storm, got %v", err)
	}
	if e := apiErr(t, err); e.StatusCode != 409 {
		t.Errorf("the error should carry the last API error: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the call ran %s past a 500ms deadline", time.Since(start))
	}
}

func TestSimLegacyCertificateAPIFallback(t *testing.T) {
	s := startSim(t, simulator.Options{})
	west := s.Cluster("west")
	west.SetLegacyCertAPI(true)
	kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	c := admin(t, s, "west")
	if err := c.UpdateCertificate(ctxT(t, 10*time.Second), reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: kp.CertPEM, Key: kp.KeyPEM}); err != nil {
		t.Fatalf("update through the fallback: %v", err)
	}
	if got, _ := west.SyncerCert(); !certs.SameCert(got, kp.CertPEM) {
		t.Errorf("the cluster does not present the new syncer certificate")
	}
	calls := west.Calls()
	if calls["PUT /v1/cluster/certificates"] != 1 || calls["PUT /v1/cluster/update_cert"] != 1 {
		t.Errorf("want one try of the new call then the deprecated one: %v", calls)
	}
	info, err := c.GetCluster(ctxT(t, 10*time.Second))
	if err != nil || !certs.SameCert(info.SyncerCertificate, kp.CertPEM) {
		t.Errorf("GET /v1/cluster: %v", err)
	}
}

// adminWith is admin with Config adjustments.
func adminWith(t *testing.T, s *simulator.Sim, name string, mod func(*cluster.Config)) *cluster.Client {
	t.Helper()
	h := s.Cluster(name)
	cfg := cluster.Config{Name: h.Name, URL: h.URL, Username: h.AdminUser, Password: h.AdminPassword, CACert: h.APICertPEM,
		Retry: cluster.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}}
	mod(&cfg)
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSimResponseTooLarge(t *testing.T) {
	s := startSim(t, simulator.Options{})
	east := s.Cluster("east")
	ctx := ctxT(t, 30*time.Second)
	tests := []struct {
		name    string
		cap     int64 // 0 = the default
		padding int
	}{
		{"a configured cap", 16 << 10, 20 << 10},
		{"the default cap", 0, cluster.DefaultMaxResponseBytes + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := adminWith(t, s, "east", func(cfg *cluster.Config) { cfg.MaxResponseBytes = tc.cap })
			if _, err := c.ListDBs(ctx, "uid"); err != nil {
				t.Fatalf("before padding: %v", err)
			}
			east.SetPadding("GET /v1/bdbs", tc.padding)
			defer east.SetPadding("GET /v1/bdbs", 0)
			east.ResetCalls()
			_, err := c.ListDBs(ctx, "uid")
			if !errors.Is(err, reapi.ErrResponseTooLarge) || !strings.Contains(err.Error(), "on east") {
				t.Fatalf("err = %v, want response_too_large naming the cluster", err)
			}
			wantLimit := tc.cap
			if wantLimit == 0 {
				wantLimit = cluster.DefaultMaxResponseBytes
			}
			var ce *reapi.CallError
			if errors.As(err, &ce); ce.Limit != wantLimit || ce.Path != "/v1/bdbs" || ce.Cluster != "east" {
				t.Errorf("call error %+v", ce)
			}
			if n := east.TotalCalls(); n != 1 {
				t.Errorf("%d calls, want 1: a response too large is not retried", n)
			}
			if _, err := c.GetDB(ctx, 1); err != nil {
				t.Errorf("other routes are not padded: %v", err)
			}
		})
	}
}

func TestSimEmptyBodies(t *testing.T) {
	s := startSim(t, simulator.Options{ActionDuration: 20 * time.Millisecond})
	east := s.Cluster("east")
	c := admin(t, s, "east")
	ctx := ctxT(t, 30*time.Second)
	for _, route := range []string{"GET /v1/bdbs", "GET /v1/bdbs/{uid}", "PUT /v1/bdbs/{uid}", "GET /v1/cluster",
		"GET /v1/actions/{uid}", "PUT /v1/cluster/certificates"} {
		east.EmptyNext(route, 1)
	}
	if dbs, err := c.ListDBs(ctx, "uid"); err != nil || dbs != nil {
		t.Errorf("list: %v %v", dbs, err)
	}
	if db, err := c.GetDB(ctx, 1); err != nil || !cmp.Equal(reapi.DB{}, db) {
		t.Errorf("get db: %+v %v", db, err)
	}
	if cl, err := c.GetCluster(ctx); err != nil || cl != (reapi.Cluster{}) {
		t.Errorf("get cluster: %+v %v", cl, err)
	}
	mode := reapi.TLSReplicaSSL
	db, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, false) // empty answer, the change is applied
	if err != nil || !cmp.Equal(reapi.DB{}, db) {
		t.Errorf("update db: %+v %v", db, err)
	}
	east.EmptyNext("PUT /v1/bdbs/{uid}", 1)
	if db, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, true); err != nil || !cmp.Equal(reapi.DB{}, db) {
		t.Errorf("dry run: %+v %v", db, err)
	}
	final, err := c.WaitForDB(ctx, 1, "", 10*time.Millisecond)
	if err != nil || final.TLSMode != reapi.TLSReplicaSSL || final.Status != reapi.DBStatusActive {
		t.Errorf("the update behind the empty answer: %+v %v", final, err)
	}
	// An action read with an empty answer says nothing: WaitForDB polls again.
	on := reapi.Enabled
	db, err = c.UpdateDB(ctx, 1, reapi.DBUpdate{EnforceClientAuthentication: &on}, false)
	if err != nil || db.ActionUID == "" {
		t.Fatalf("update: %+v %v", db, err)
	}
	if final, err := c.WaitForDB(ctx, 1, db.ActionUID, 10*time.Millisecond); err != nil || final.EnforceClientAuthentication != reapi.Enabled {
		t.Errorf("wait through an empty action answer: %+v %v", final, err)
	}
	kp, err := certs.Generate(certs.Profile{FQDN: "east.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateCertificate(ctx, reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: kp.CertPEM, Key: kp.KeyPEM}); err != nil {
		t.Errorf("certificate update: %v", err)
	}
	if got, _ := east.SyncerCert(); !certs.SameCert(got, kp.CertPEM) {
		t.Errorf("the certificate behind the empty answer is not installed")
	}
	if n := east.Calls()["GET /v1/actions/{uid}"]; n < 2 {
		t.Errorf("the action was read %d times: the empty answer was taken for a result", n)
	}
}

func TestSimPartialCertUpdate(t *testing.T) {
	kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	upd := reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: kp.CertPEM, Key: kp.KeyPEM}
	tests := []struct {
		name     string
		legacy   bool
		partials int
		wantErr  bool
		route    string
		wantPUTs int
	}{
		{"two 409s are ridden out", false, 2, false, "PUT /v1/cluster/certificates", 3},
		{"409s outlast the attempts", false, 100, true, "PUT /v1/cluster/certificates", 4},
		{"legacy update_cert, 409s outlast the attempts", true, 100, true, "PUT /v1/cluster/update_cert", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, simulator.Options{})
			west := s.Cluster("west")
			west.SetLegacyCertAPI(tc.legacy)
			west.PartialCertUpdates(tc.partials)
			c := adminWith(t, s, "west", func(cfg *cluster.Config) { cfg.Retry.MaxAttempts = 4 })
			err := c.UpdateCertificate(ctxT(t, 30*time.Second), upd)
			if got := west.Calls()[tc.route]; got != tc.wantPUTs {
				t.Errorf("%s sent %d times, want %d", tc.route, got, tc.wantPUTs)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, reapi.ErrPartiallyApplied) || reapi.ErrorCode(err) != reapi.CodePartiallyApplied ||
				!strings.Contains(err.Error(), "not all nodes have been updated") {
				t.Fatalf("err = %v, want partially_applied saying so", err)
			}
			// It is partial indeed: the cluster presents the new certificate already.
			if got, _ := west.SyncerCert(); !certs.SameCert(got, kp.CertPEM) {
				t.Errorf("the simulator did not install the certificate")
			}
		})
	}
}

func TestSimActionFailures(t *testing.T) {
	for _, tc := range []struct {
		shape simulator.ActionFailure
		want  string
	}{
		{simulator.ActionFailError, "action %s failed: the database change could not be applied"},
		{simulator.ActionFailErrorCode, "action %s failed: internal_error: the database change could not be applied"},
		{simulator.ActionFailAdditionalInfo, "action %s failed: the database change could not be applied"},
	} {
		t.Run(string(tc.shape), func(t *testing.T) {
			s := startSim(t, simulator.Options{ActionDuration: 20 * time.Millisecond})
			east := s.Cluster("east")
			if err := east.FailNextActions(1, tc.shape); err != nil {
				t.Fatal(err)
			}
			c := admin(t, s, "east")
			ctx := ctxT(t, 30*time.Second)
			mode := reapi.TLSReplicaSSL
			db, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, false)
			if err != nil || db.ActionUID == "" {
				t.Fatalf("update: %+v %v", db, err)
			}
			_, err = c.WaitForDB(ctx, 1, db.ActionUID, 10*time.Millisecond)
			if want := fmt.Sprintf(tc.want, db.ActionUID); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to contain %q", err, want)
			}
			if now, _ := c.GetDB(ctx, 1); now.TLSMode != reapi.TLSDisabled {
				t.Errorf("a failed action changed the database: %+v", now)
			}
		})
	}
}

func TestSimUnreachableAndSlow(t *testing.T) {
	s := startSim(t, simulator.Options{})
	east := s.Cluster("east")
	c := admin(t, s, "east")
	if _, err := c.GetCluster(ctxT(t, 10*time.Second)); err != nil { // a kept-alive connection exists now
		t.Fatal(err)
	}
	east.ResetCalls()
	east.SetUnreachable(true)
	ctx := ctxT(t, 20*time.Second)
	start := time.Now()
	_, err := c.ListDBs(ctx)
	if !errors.Is(err, reapi.ErrUnreachable) || reapi.ErrorCode(err) != reapi.CodeUnreachable {
		t.Fatalf("err = %v, want unreachable", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second || ctx.Err() != nil {
		t.Errorf("an unreachable cluster took %s to report", elapsed)
	}
	if east.TotalCalls() != 0 {
		t.Errorf("a dead cluster counted %d calls", east.TotalCalls())
	}
	east.SetUnreachable(false)
	if _, err := c.ListDBs(ctx); err != nil {
		t.Fatalf("back up: %v", err)
	}

	// A cluster that answers too slowly costs its share of the time, not the whole of it.
	east.SetLatency(time.Minute)
	slow, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start = time.Now()
	_, err = c.GetCluster(slow)
	if !errors.Is(err, reapi.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want timeout", err)
	}
	if elapsed := time.Since(start); slow.Err() != nil || elapsed > 1900*time.Millisecond {
		t.Errorf("a slow cluster took %s of a 2s context; its share is 1s", elapsed)
	}
}

func TestSimStatsMatchTheCluster(t *testing.T) {
	s := startSim(t, simulator.Options{ActionDuration: 20 * time.Millisecond})
	east := s.Cluster("east")
	c := admin(t, s, "east")
	ctx := ctxT(t, 30*time.Second)
	east.FailNext("GET /v1/bdbs", 2, 503)
	if _, err := c.ListDBs(ctx, "uid"); err != nil {
		t.Fatal(err)
	}
	mode := reapi.TLSReplicaSSL
	if _, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, true); err != nil {
		t.Fatal(err)
	}
	db, err := c.UpdateDB(ctx, 1, reapi.DBUpdate{TLSMode: &mode}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitForDB(ctx, 1, db.ActionUID, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if int(st.Calls+st.Retries) != east.TotalCalls() || st.Retries != 2 || st.Writes != 1 {
		t.Errorf("client stats %+v; the cluster saw %d requests (%v)", st, east.TotalCalls(), east.Calls())
	}
	if puts := east.Calls()["PUT /v1/bdbs/{uid}"] - east.Calls()["PUT /v1/bdbs/{uid}"+simulator.DryRunSuffix]; int64(puts) != st.Writes {
		t.Errorf("writes %d, the cluster saw %d PUTs that were not dry runs", st.Writes, puts)
	}
}
