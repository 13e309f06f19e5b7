package main

import (
	"context"
	"strings"
	"testing"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// throughIngress points west/1's Replica Of entry at east/1 through an ingress that routes by SNI,
// as on Kubernetes or OpenShift, and registers east with or without its replication hosts.
func throughIngress(t *testing.T, f *fixture, mapped bool) {
	t.Helper()
	east := f.st.Sim.Cluster("east")
	east.AddIngress("east-ingress.apps.example.org")
	if err := east.AddRoute("orders.apps.example.org", 1); err != nil {
		t.Fatal(err)
	}
	err := f.st.Sim.Cluster("west").MutateDB(1, func(c *simulator.DBConfig) {
		rs := &c.ReplicaSources[0]
		at := strings.LastIndexByte(rs.URI, '@')
		rs.URI = rs.URI[:at+1] + "east-ingress.apps.example.org:443"
		rs.ReplicationTLSSNI = "orders.apps.example.org"
	})
	if err != nil {
		t.Fatal(err)
	}
	if rs := testkit.ReadDB(t, f.st, "west", 1).ReplicaSources[0]; rs.Status != "in-sync" {
		t.Fatalf("precondition: the link through the ingress should be in sync, is %q", rs.Status)
	}
	if !mapped {
		return
	}
	api, err := f.st.Store.ClusterAPI(context.Background(), "east")
	if err != nil {
		t.Fatal(err)
	}
	api.ReplicationHosts = []secretstore.ReplicationHost{{Host: "east-ingress.apps.example.org"}, {Host: "orders.apps.example.org", DB: 1}}
	if err := f.st.Store.PutClusterAPI(context.Background(), api); err != nil {
		t.Fatal(err)
	}
}

// TestLinkThroughAnIngressIsSecured: a link whose uri names an ingress host and whose entry names the
// source database's route in replication_tls_sni resolves through the registration's
// replication_hosts and is secured; without the mapping it is a clear refusal that changes nothing.
func TestLinkThroughAnIngressIsSecured(t *testing.T) {
	t.Run("mapped", func(t *testing.T) {
		f := newFixture(t, testkit.Options{})
		throughIngress(t, f, true)
		if _, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`)); err != nil {
			t.Fatalf("handler: %v", err)
		}
		f.assertSecured("replica_ssl")
		raw, err := f.st.Sim.Cluster("west").DB(1)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "east-ingress.apps.example.org:443") || !strings.Contains(string(raw), `"replication_tls_sni":"orders.apps.example.org"`) {
			t.Error("the entry's uri or SNI was rewritten; both must stay as the operator set them")
		}
	})
	t.Run("not mapped", func(t *testing.T) {
		f := newFixture(t, testkit.Options{})
		throughIngress(t, f, false)
		_, err := f.invoke(event(`{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`))
		if err == nil || !strings.Contains(err.Error(), "unknown source cluster") {
			t.Fatalf("handler: %v, want a refusal naming an unknown source cluster", err)
		}
		if w := testkit.Writes(f.st, "east") + testkit.Writes(f.st, "west"); w != 0 {
			t.Errorf("%d cluster writes for a link that does not resolve", w)
		}
	})
}
