package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
)

func TestRunServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-action-duration", "10ms"}, pw, io.Discard)
		pw.Close()
	}()

	// Read the banner up to "ready".
	sc := bufio.NewScanner(pr)
	var banner []string
	for sc.Scan() {
		banner = append(banner, sc.Text())
		if sc.Text() == "ready; Ctrl-C to stop" {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	out := strings.Join(banner, "\n")
	clustersFile := filepath.Join(dir, "clusters.json")
	for _, want := range []string{"cluster east", "cluster west", "east.redis.local", filepath.Join(dir, "east-api-ca.pem"), clustersFile} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	b, err := os.ReadFile(clustersFile)
	if err != nil {
		t.Fatal(err)
	}
	var f simulator.ClustersFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Clusters) != 2 {
		t.Fatalf("clusters.json lists %d clusters", len(f.Clusters))
	}
	west := f.Clusters[1]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(west.CACert))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, west.URL+"/v1/bdbs/1?fields=replica_sources", nil)
	req.SetBasicAuth(west.Username, west.Password)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var db struct {
		ReplicaSources []struct {
			Status string `json:"status"`
		} `json:"replica_sources"`
	}
	err = json.NewDecoder(resp.Body).Decode(&db)
	resp.Body.Close()
	if err != nil || len(db.ReplicaSources) != 1 || db.ReplicaSources[0].Status != "in-sync" {
		t.Fatalf("west db 1: %+v, %v; want one in-sync replica source", db, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := hc.Get(west.URL + "/v1/cluster"); err == nil {
		t.Error("simulator still answers after run returned")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"clusters":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"stray argument", []string{"extra"}},
		{"missing topology", []string{"-topology", filepath.Join(t.TempDir(), "missing.json")}},
		{"invalid topology", []string{"-topology", bad}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(t.Context(), tt.args, io.Discard, io.Discard); err == nil {
				t.Error("run succeeded")
			}
		})
	}
}
