package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStartAndClose(t *testing.T) {
	s, err := New(demo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("second Start succeeded")
	}
	east := s.Cluster("east")
	if east == nil || s.Cluster("north") != nil {
		t.Fatal("Cluster lookup")
	}
	c := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, east.APICertPEM, false)}
	c.want(200, "GET", "/v1/cluster", nil, nil)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
	}
	wg.Wait()
	if _, _, err := c.try("GET", "/v1/cluster", nil); err == nil {
		t.Error("API still answers after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}

func TestContextEndStops(t *testing.T) {
	s, err := New(demo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	east := s.Cluster("east")
	c := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, east.APICertPEM, false)}
	cancel()
	waitFor(t, "the API to stop", func() bool {
		_, _, err := c.try("GET", "/v1/cluster", nil)
		return err != nil
	})
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	s := startSim(t, demo(t), Options{})
	dir := filepath.Join(t.TempDir(), "out")
	path, err := s.WriteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("clusters.json mode %o, want 600", perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ClustersFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var want []ClusterRecord
	for _, c := range s.Clusters() {
		want = append(want, ClusterRecord{Name: c.Name, FQDN: c.FQDN, URL: c.URL, Username: c.AdminUser, Password: c.AdminPassword,
			ViewerUsername: c.ViewerUser, ViewerPassword: c.ViewerPassword, CACert: c.APICertPEM,
			CAFile: filepath.Join(dir, c.Name+"-api-ca.pem")})
	}
	if diff := cmp.Diff(want, f.Clusters); diff != "" {
		t.Errorf("clusters.json (-want +got):\n%s", diff)
	}
	// A client configured only from the files reaches the cluster.
	for _, r := range f.Clusters {
		ca, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, base: r.URL, user: r.Username, pass: r.Password, hc: pinnedHTTP(t, string(ca), false)}
		var cl tCluster
		c.want(200, "GET", "/v1/cluster", nil, &cl)
		if cl.Name != r.FQDN {
			t.Errorf("%s answers name %q, want %q", r.Name, cl.Name, r.FQDN)
		}
	}
	// Rewriting over a world-readable file keeps it private.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten clusters.json mode %o", fi.Mode().Perm())
	}

	unstarted, err := New(demo(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unstarted.WriteFiles(t.TempDir()); err == nil {
		t.Error("WriteFiles before Start succeeded")
	}
}

// TestLogsHoldNoSecrets drives every kind of call with a debug logger and looks for secret material.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	_, east, west := startDemo(t, opts)
	next := freshCert(t, "west.redis.local")
	proxy, proxyKey := east.ProxyCert()
	_, syncerKey := west.SyncerCert()
	wc := adminClient(t, west)
	l := linkOf(t, west, 1)
	wc.want(200, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{
		{"uid": l.UID, "uri": l.URI, "encryption": true, "server_cert": proxy, "client_cert": next.CertPEM, "client_key": next.KeyPEM}}}, nil)
	west.CompleteActions()
	wc.want(400, "PUT", "/v1/bdbs/1", map[string]any{"replica_sources": []map[string]any{
		{"uid": l.UID, "uri": strings.Replace(l.URI, "redis://", "http://", 1)}}}, nil)
	wc.want(200, "PUT", "/v1/cluster/update_cert", map[string]string{"name": "syncer", "certificate": next.CertPEM, "key": next.KeyPEM}, nil)
	wc.want(200, "GET", "/v1/cluster/certificates", nil, nil)
	(&client{t: t, base: west.URL, user: west.AdminUser, pass: "wrong-password-attempt", hc: wc.hc}).want(401, "GET", "/v1/bdbs", nil, nil)
	logs := buf.String()
	if !strings.Contains(logs, "PUT /v1/bdbs/{uid}") {
		t.Fatalf("debug log does not show the calls:\n%s", logs)
	}
	for name, secret := range map[string]string{
		"admin pass": "orders-demo-password", "API password": west.AdminPassword, "wrong password": "wrong-password-attempt",
		"client key": next.KeyPEM[30:70], "proxy key": proxyKey[30:70], "syncer key": syncerKey[30:70], "PEM": "-----BEGIN",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold the %s", name)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
