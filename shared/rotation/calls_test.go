package rotation_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// pairTopology is east with n source databases and west with n destinations, west/i replicating
// east/i.
func pairTopology(n int) simulator.Topology {
	users := func(c string) []simulator.UserSpec {
		return []simulator.UserSpec{{Username: "admin@" + c, Password: c + "-admin-test-password", Role: simulator.RoleAdmin}}
	}
	east := simulator.ClusterSpec{Name: "east", FQDN: "east.redis.local", Users: users("east")}
	west := simulator.ClusterSpec{Name: "west", FQDN: "west.redis.local", Users: users("west")}
	for i := 1; i <= n; i++ {
		east.Databases = append(east.Databases, simulator.DBSpec{UID: i, Name: fmt.Sprintf("src-%d", i), Port: 12000 + i})
		west.Databases = append(west.Databases, simulator.DBSpec{UID: i, Name: fmt.Sprintf("dst-%d", i), Port: 13000 + i,
			ReplicaOf: []simulator.ReplicaOfSpec{{Cluster: "east", DB: i}}})
	}
	return simulator.Topology{Clusters: []simulator.ClusterSpec{east, west}}
}

// stepCalls is one step's cluster API calls and writes on each cluster.
type stepCalls struct {
	step                                         rotation.Step
	eastCalls, eastWrites, westCalls, westWrites int
}

func (e *env) countedRotation(cluster string, kind secretstore.Kind) []stepCalls {
	e.t.Helper()
	e.enableRotation(cluster, kind)
	arn := e.arn(cluster, kind)
	token := e.startRotation(cluster, kind)
	var out []stepCalls
	for _, step := range allSteps {
		for _, c := range []string{"east", "west"} {
			e.st.Sim.Cluster(c).ResetCalls()
		}
		e.mustStep(step, arn, token)
		out = append(out, stepCalls{step: step,
			eastCalls: testkit.Calls(e.st, "east"), eastWrites: testkit.Writes(e.st, "east"),
			westCalls: testkit.Calls(e.st, "west"), westWrites: testkit.Writes(e.st, "west")})
	}
	return out
}

// TestClusterAPICallsPerRotation counts what a rotation costs the clusters for n linked databases,
// and checks the writes: one trust list per source database and one certificate for a syncer
// rotation, one entry per destination and one certificate for a proxy rotation. The whole table is
// logged for the documentation.
func TestClusterAPICallsPerRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: several simulated rotations")
	}
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d linked databases", n), func(t *testing.T) {
			topo := pairTopology(n)
			e := newEnv(t, &topo, simulator.Options{})
			for _, kind := range []secretstore.Kind{secretstore.Syncer, secretstore.Proxy} {
				cluster := "west"
				if kind == secretstore.Proxy {
					cluster = "east"
				}
				counts := e.countedRotation(cluster, kind)
				var lines []string
				total := 0
				for _, c := range counts {
					lines = append(lines, fmt.Sprintf("  %-12s east %3d calls %2d writes   west %3d calls %2d writes", c.step, c.eastCalls, c.eastWrites, c.westCalls, c.westWrites))
					total += c.eastCalls + c.westCalls
				}
				t.Logf("%s rotation of %s, %d linked databases: %d cluster API calls\n%s", kind, cluster, n, total, strings.Join(lines, "\n"))

				set := counts[1]
				wantEast, wantWest := n, 1 // syncer: every source trust list, then the certificate
				if kind == secretstore.Proxy {
					wantEast, wantWest = 1, n // proxy: the certificate, then every destination entry
				}
				if set.eastWrites != wantEast || set.westWrites != wantWest {
					t.Errorf("%s setSecret writes: east %d west %d, want %d and %d", kind, set.eastWrites, set.westWrites, wantEast, wantWest)
				}
				for _, c := range []stepCalls{counts[0], counts[2], counts[3]} {
					if c.eastWrites+c.westWrites != 0 {
						t.Errorf("%s %s wrote to a cluster", kind, c.step)
					}
				}
				if counts[0].eastCalls+counts[0].westCalls != 0 {
					t.Errorf("%s createSecret called a cluster: its profile comes from Secrets Manager", kind)
				}
			}
		})
	}
}
