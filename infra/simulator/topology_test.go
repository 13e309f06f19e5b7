package simulator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDemoTopology(t *testing.T) {
	want := Topology{Clusters: []ClusterSpec{
		{Name: "east", FQDN: "east.redis.local",
			Users: []UserSpec{
				{Username: "admin@east.redis.local", Password: "east-admin-demo-password", Role: RoleAdmin},
				{Username: "viewer@east.redis.local", Password: "east-viewer-demo-password", Role: RoleDBViewer},
			},
			Databases: []DBSpec{{UID: 1, Name: "orders", Port: 12000, AuthenticationAdminPass: "orders-demo-password"}}},
		{Name: "west", FQDN: "west.redis.local",
			Users: []UserSpec{
				{Username: "admin@west.redis.local", Password: "west-admin-demo-password", Role: RoleAdmin},
				{Username: "viewer@west.redis.local", Password: "west-viewer-demo-password", Role: RoleDBViewer},
			},
			Databases: []DBSpec{{UID: 1, Name: "orders-replica", Port: 12001, TLSMode: "disabled",
				AuthenticationAdminPass: "orders-replica-demo-password", ReplicaOf: []ReplicaOfSpec{{Cluster: "east", DB: 1}}}}},
	}}
	if diff := cmp.Diff(want, demo(t)); diff != "" {
		t.Errorf("demo topology (-want +got):\n%s", diff)
	}
}

func TestTopologyValidation(t *testing.T) {
	base := func() Topology { return demo(t) }
	tests := []struct {
		name    string
		mutate  func(*Topology)
		wantErr string
	}{
		{"no clusters", func(tp *Topology) { tp.Clusters = nil }, "no clusters"},
		{"duplicate cluster name", func(tp *Topology) { tp.Clusters[1].Name = "east" }, "duplicate name"},
		{"duplicate fqdn", func(tp *Topology) { tp.Clusters[1].FQDN = "EAST.redis.local" }, "duplicate fqdn"},
		{"bad fqdn", func(tp *Topology) { tp.Clusters[0].FQDN = "east_redis" }, "not a DNS name"},
		{"no admin", func(tp *Topology) { tp.Clusters[0].Users = tp.Clusters[0].Users[1:] }, "at least one admin"},
		{"unknown role", func(tp *Topology) { tp.Clusters[0].Users[1].Role = "root" }, "role \"root\""},
		{"user without password", func(tp *Topology) { tp.Clusters[0].Users[1].Password = "" }, "username and password"},
		{"duplicate port", func(tp *Topology) { tp.Clusters[1].Databases[0].Port = 12000 }, "port 12000 already used"},
		{"duplicate db uid", func(tp *Topology) {
			tp.Clusters[0].Databases = append(tp.Clusters[0].Databases, DBSpec{UID: 1, Name: "x", Port: 13000})
		}, "duplicate uid"},
		{"bad tls_mode", func(tp *Topology) { tp.Clusters[0].Databases[0].TLSMode = "on" }, "tls_mode"},
		{"replica of a missing db", func(tp *Topology) { tp.Clusters[1].Databases[0].ReplicaOf[0].DB = 9 }, "no such database"},
		{"replica of itself", func(tp *Topology) {
			tp.Clusters[1].Databases[0].ReplicaOf[0] = ReplicaOfSpec{Cluster: "west", DB: 1}
		}, "cannot replicate itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := base()
			tt.mutate(&tp)
			err := tp.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %v, want an error mentioning %q", err, tt.wantErr)
			}
			if _, err := New(tp, Options{}); err == nil {
				t.Error("New accepted the invalid topology")
			}
		})
	}
}

func TestLoadTopology(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, wantErr string
	}{
		{"unknown key", `{"clusters":[{"name":"a","fqdn":"a.local","userz":[]}]}`, "unknown field"},
		{"trailing data", `{"clusters":[]} {}`, "trailing data"},
		{"not JSON", `clusters: []`, "decode topology"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadTopology(p); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("LoadTopology: %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	t.Run("the demo file", func(t *testing.T) {
		got, err := LoadTopology("topologies/demo.json")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(demo(t), got); diff != "" {
			t.Errorf("(-embedded +file):\n%s", diff)
		}
	})
	if _, err := LoadTopology(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("LoadTopology of a missing file succeeded")
	}
}
