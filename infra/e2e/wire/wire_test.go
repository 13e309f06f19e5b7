package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replica-tls/replica-tls/infra/dataplane"
	"github.com/replica-tls/replica-tls/infra/dataplane/dptest"
	"github.com/replica-tls/replica-tls/infra/lambdarun"
	"github.com/replica-tls/replica-tls/infra/localstack"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// fixture is one test's world: the demo topology (east/1 -> west/1, plain) backed by redis-server,
// the local stack on the package's moto_server, and the replica-created function under the emulator.
type fixture struct {
	t          *testing.T
	plane      *dataplane.Plane
	st         *localstack.Stack
	fn         *lambdarun.Runner
	logs       *syncBuffer
	east, west *simulator.ClusterHandle
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture on a topology of the test's (nil: the demo's east/1 -> west/1).
func newFixtureWith(t *testing.T, topo *simulator.Topology) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: real bootstrap, moto_server and redis-server (skipped with -short)")
	}
	f := &fixture{t: t, plane: dptest.NewPlane(t), logs: &syncBuffer{}}
	f.st = testkit.NewStack(t, motoURL, testkit.Options{Topology: topo, Sim: simulator.Options{DataPlane: f.plane}})
	f.east, f.west = f.st.Sim.Cluster("east"), f.st.Sim.Cluster("west")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	env := maps.Clone(function.Env)
	maps.Copy(env, f.st.FunctionEnv())
	fn, err := lambdarun.Start(ctx, rie, bootstrap, env, lambdarun.Options{
		Stdout: f.logs, FunctionName: function.LogicalID, Timeout: time.Minute, MemoryMB: function.MemoryMB,
	})
	if err != nil {
		t.Fatalf("start the function under the emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := fn.Stop(); err != nil {
			t.Errorf("stop the emulator: %v", err)
		}
	})
	f.fn = fn
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
	return f
}

// invoke runs the function with a "Replica Database Created" event and fails the test if it fails.
func (f *fixture) invoke(detail string) {
	t := f.t
	t.Helper()
	event := `{"version":"0","id":"evt-` + fmt.Sprint(time.Now().UnixNano()) + `","detail-type":"Replica Database Created",` +
		`"source":"replica-tls.pipeline","time":"2026-11-28T04:00:00Z","resources":[],"detail":` + detail + `}`
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := f.fn.Invoke(ctx, []byte(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	testkit.NoLeaks(t, f.st, "function answer", string(res.Payload))
	testkit.NoLeaks(t, f.st, "function log", f.logs.String())
	if res.FunctionError != nil {
		t.Fatalf("the function failed: %v\nlog:\n%s", res.FunctionError, f.logs.String())
	}
	var answer struct {
		Changed bool `json:"changed"`
	}
	if err := json.Unmarshal(res.Payload, &answer); err != nil || !answer.Changed {
		t.Fatalf("the function changed nothing: %s (%v)", res.Payload, err)
	}
}

func (f *fixture) endpoint(cluster string) dataplane.Endpoint {
	return dptest.Endpoint(f.t, f.plane, cluster, 1)
}

// tlsToEast is a client on east/1's TLS endpoint that pins east's proxy certificate and presents
// certPEM (nothing when empty).
func (f *fixture) tlsToEast(certPEM, keyPEM string) *redis.Client {
	proxy, _ := f.east.ProxyCert()
	return dptest.TLSClient(f.t, f.plane, "east", 1, proxy, "east.redis.local", certPEM, keyPEM)
}

func TestFunctionMovesReplicationOntoMutualTLS(t *testing.T) {
	tests := []struct {
		scope     string
		wantPlain bool // the source's plain endpoint still serves ordinary clients
	}{
		{"replica", true},
		{"all", false},
	}
	for _, tt := range tests {
		t.Run(tt.scope+" scope", func(t *testing.T) {
			f := newFixture(t)
			ctx := t.Context()
			east := f.endpoint("east")
			replica := dptest.Plain(t, f.plane, "west", 1) // west/1 itself keeps TLS off

			// Before: an unsecured link replicates in plain text.
			plainSource := dptest.Plain(t, f.plane, "east", 1)
			dptest.Arrives(t, plainSource, replica, "before", "in plain text")
			if got := dptest.Info(t, replica, "replication")["master_port"]; got != portOf(east.PlainAddr) {
				t.Fatalf("before: replica's master_port = %s, want the source's plain port %s", got, portOf(east.PlainAddr))
			}

			f.invoke(`{"destination":{"cluster":"west","database":1},"tls_scope":"` + tt.scope + `"}`)

			// After: the replica follows the source's TLS endpoint and is up.
			dptest.Eventually(t, 20*time.Second, "the replica replicates from the TLS port", func() (bool, string) {
				in := dptest.Info(t, replica, "replication")
				return in["master_port"] == portOf(east.TLSAddr) && in["master_link_status"] == "up",
					fmt.Sprintf("master_port %s (TLS port %s), link %s", in["master_port"], portOf(east.TLSAddr), in["master_link_status"])
			})
			link := dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
			if !link.Encryption {
				t.Errorf("the link is in sync but its entry has encryption off")
			}
			syncer, syncerKey := f.west.SyncerCert()
			trustedClient := f.tlsToEast(syncer, syncerKey)
			dptest.Arrives(t, trustedClient, replica, "after", "over mutual TLS")

			// The TLS endpoint refuses a client with no certificate or an untrusted one.
			stranger, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]*redis.Client{
				"no certificate": f.tlsToEast("", ""),
				"an untrusted certificate (same subject as west's syncer)": f.tlsToEast(stranger.CertPEM, stranger.KeyPEM),
			} {
				if err := c.Ping(ctx).Err(); err == nil {
					t.Errorf("the TLS endpoint served a client presenting %s", name)
				} else {
					t.Logf("client presenting %s refused: %v", name, err)
				}
			}

			// The plain endpoint: never replication; ordinary clients only in replica scope.
			reply, err := dptest.TryReplication(ctx, east.PlainAddr, east.Password)
			if err == nil && strings.HasPrefix(reply, "+FULLRESYNC") {
				t.Errorf("the source's plain port accepted a replication attempt: %q", reply)
			}
			t.Logf("replication attempt on the plain port: %q (%v)", reply, err)
			conn, dialErr := net.DialTimeout("tcp", east.PlainAddr, 2*time.Second)
			if dialErr == nil {
				conn.Close()
			}
			if open := dialErr == nil; open != tt.wantPlain {
				t.Errorf("plain port listening = %v, want %v (%v)", open, tt.wantPlain, dialErr)
			}
			if tt.wantPlain {
				if err := plainSource.Ping(ctx).Err(); err != nil {
					t.Errorf("an ordinary client on the plain port: %v", err)
				}
			}
		})
	}
}

// syncBuffer collects the function's log, which the emulator's output goroutine writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}
