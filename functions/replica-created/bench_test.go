package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
)

// countingTransport counts AWS requests by service (the X-Amz-Target prefix).
type countingTransport struct {
	next                   http.RoundTripper
	secrets, dynamo, other atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch t := r.Header.Get("X-Amz-Target"); {
	case strings.HasPrefix(t, "secretsmanager."):
		c.secrets.Add(1)
	case strings.HasPrefix(t, "DynamoDB_"):
		c.dynamo.Add(1)
	default:
		c.other.Add(1)
	}
	return c.next.RoundTrip(r)
}

// registryTopology: the demo link east/1 -> west/1 plus n-2 other clusters with one database each; a
// few answer 20 ms late, and one does not answer at all (set after start). None is on the link.
func registryTopology(n int) simulator.Topology {
	user := func(c string) []simulator.UserSpec {
		return []simulator.UserSpec{{Username: "admin@" + c, Password: c + "-admin-bench-password", Role: simulator.RoleAdmin}}
	}
	topo := simulator.Topology{Clusters: []simulator.ClusterSpec{
		{Name: "east", FQDN: "east.redis.local", Users: user("east"), Databases: []simulator.DBSpec{{UID: 1, Name: "orders", Port: 12000}}},
		{Name: "west", FQDN: "west.redis.local", Users: user("west"), Databases: []simulator.DBSpec{{UID: 1, Name: "orders-dr", Port: 12001,
			ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: "east", DB: 1}}}}},
	}}
	for i := 3; i <= n; i++ {
		name := fmt.Sprintf("c%03d", i)
		topo.Clusters = append(topo.Clusters, simulator.ClusterSpec{Name: name, FQDN: name + ".redis.local", Users: user(name),
			Databases: []simulator.DBSpec{{UID: 1, Name: "db", Port: 14000 + i}}})
	}
	return topo
}

// BenchmarkReplicaCreatedByRegistrySize: one replica-created event whatever the number of
// registered clusters: its cluster API and Secrets Manager calls must not grow with the registry,
// and an unreachable cluster off the link must cost nothing. Each iteration secures the link from
// scratch (the link is reset), so both sides are written under their leases.
func BenchmarkReplicaCreatedByRegistrySize(b *testing.B) {
	for _, n := range []int{2, 50, 500} {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			topo := registryTopology(n)
			st := testkit.NewStack(b, motoURL, testkit.Options{Topology: &topo})
			ctx := context.Background()
			if err := st.Pin(ctx); err != nil {
				b.Fatal(err)
			}
			for i := 3; i <= n; i++ {
				c := st.Sim.Cluster(fmt.Sprintf("c%03d", i))
				switch {
				case i == 3:
					c.SetUnreachable(true)
				case i <= 6:
					c.SetLatency(20 * time.Millisecond)
				}
			}
			count := &countingTransport{next: http.DefaultTransport}
			awsCfg := st.AWS.Copy()
			awsCfg.RetryMaxAttempts = 3
			awsCfg.HTTPClient = &http.Client{Transport: count}
			cfg := testkit.AppConfig(st)
			cfg.CacheTTL = -1 // every event pays its own reads: a cold container
			h := &handler{app: lambdaapp.New(cfg, awsCfg, io.Discard)}
			ev := event(`{"destination": {"cluster": "west", "database": 1}, "tls_scope": "replica"}`)

			var calls, writes, secrets, dynamo int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				resetLink(b, st)
				count.secrets.Store(0)
				count.dynamo.Store(0)
				east, west := st.Sim.Cluster("east"), st.Sim.Cluster("west")
				b.StartTimer()
				resp, err := h.handle(ctx, ev)
				b.StopTimer()
				if err != nil {
					b.Fatalf("replica-created with %d clusters: %v", n, err)
				}
				if resp.Writes != 2 {
					b.Fatalf("%d writes, want 2 (one per side)", resp.Writes)
				}
				calls += int64(east.TotalCalls() + west.TotalCalls()) // every call the clusters saw, snapshot reads included
				writes += int64(resp.Writes)
				secrets += count.secrets.Load()
				dynamo += count.dynamo.Load()
				b.StartTimer()
			}
			b.StopTimer()
			others := 0
			for i := 3; i <= n; i++ {
				others += st.Sim.Cluster(fmt.Sprintf("c%03d", i)).TotalCalls()
			}
			if others != 0 {
				b.Errorf("clusters off the link received %d calls", others)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "cluster-calls/event")
			b.ReportMetric(float64(secrets)/float64(b.N), "secretsmanager-calls/event")
			b.ReportMetric(float64(dynamo)/float64(writes), "dynamodb-calls/side")
		})
	}
}

// resetLink takes east/1 -> west/1 back to unsecured, as a new replica would be, and resets counts.
func resetLink(b *testing.B, st *localstack.Stack) {
	b.Helper()
	err := st.Sim.Cluster("east").MutateDB(1, func(c *simulator.DBConfig) {
		c.TLSMode, c.EnforceClientAuthentication, c.AuthenticationSSLClientCerts = "disabled", "disabled", nil
	})
	if err == nil {
		err = st.Sim.Cluster("west").MutateDB(1, func(c *simulator.DBConfig) {
			c.ReplicaSources[0].Encryption, c.ReplicaSources[0].ServerCert = false, ""
		})
	}
	if err != nil {
		b.Fatalf("reset the link: %v", err)
	}
	st.Sim.Cluster("east").ResetCalls()
	st.Sim.Cluster("west").ResetCalls()
}
