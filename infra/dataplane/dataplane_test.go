package dataplane_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/dataplane"
	"github.com/replica-tls/replica-tls/infra/dataplane/dptest"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// world is the demo topology (east/1 -> west/1, plain) backed by redis-server.
type world struct {
	sim        *simulator.Sim
	plane      *dataplane.Plane
	east, west *simulator.ClusterHandle
}

func newWorld(t *testing.T) *world {
	t.Helper()
	plane := dptest.NewPlane(t)
	topo, err := simulator.DemoTopology()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.New(topo, simulator.Options{DataPlane: plane, ActionDuration: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	w := &world{sim: sim, plane: plane, east: sim.Cluster("east"), west: sim.Cluster("west")}
	dptest.WaitLink(t, sim, "west", 1, "in-sync", "")
	return w
}

// secure sets up TLS on east/1 (mode, client authentication, trusting west's syncer certificate) and
// turns encryption on for west/1's link, the way the reconciler would, but directly.
func (w *world) secure(t *testing.T, mode, enforce string) {
	t.Helper()
	syncer, _ := w.west.SyncerCert()
	proxy, _ := w.east.ProxyCert()
	if err := w.east.MutateDB(1, func(c *simulator.DBConfig) {
		c.TLSMode, c.EnforceClientAuthentication = mode, enforce
		c.AuthenticationSSLClientCerts = append(c.AuthenticationSSLClientCerts, syncer)
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.west.MutateDB(1, func(c *simulator.DBConfig) {
		c.ReplicaSources[0].Encryption, c.ReplicaSources[0].ServerCert = true, proxy
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPlainLinkReplicates(t *testing.T) {
	w := newWorld(t)
	src, dst := dptest.Plain(t, w.plane, "east", 1), dptest.Plain(t, w.plane, "west", 1)
	dptest.Arrives(t, src, dst, "greeting", "hello over plain text")
	ep := dptest.Endpoint(t, w.plane, "east", 1)
	if got, want := dptest.Info(t, dst, "replication")["master_port"], portOf(ep.PlainAddr); got != want {
		t.Errorf("replica's master_port = %s, want the source's plain port %s", got, want)
	}
}

func TestSecuredLinkReplicatesOverTLS(t *testing.T) {
	for _, mode := range []string{"replica_ssl", "enabled"} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t)
			w.secure(t, mode, "enabled")
			dst := dptest.Plain(t, w.plane, "west", 1)
			ep := dptest.Endpoint(t, w.plane, "east", 1)
			dptest.Eventually(t, 20*time.Second, "the replica follows the TLS port", func() (bool, string) {
				in := dptest.Info(t, dst, "replication")
				return in["master_port"] == portOf(ep.TLSAddr) && in["master_link_status"] == "up",
					"master_port " + in["master_port"] + " link " + in["master_link_status"]
			})
			dptest.WaitLink(t, w.sim, "west", 1, "in-sync", "")
			syncer, syncerKey := w.west.SyncerCert()
			proxy, _ := w.east.ProxyCert()
			src := dptest.TLSClient(t, w.plane, "east", 1, proxy, "east.redis.local", syncer, syncerKey)
			dptest.Arrives(t, src, dst, "greeting", "hello over TLS")
		})
	}
}

// TestEndpointsFollowTLSMode checks, for each tls_mode and client authentication setting, which
// clients each endpoint serves.
func TestEndpointsFollowTLSMode(t *testing.T) {
	other, err := certs.Generate(certs.Profile{FQDN: "north.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		plainGet, plainSync, tlsNoCert, tlsUntrusted, tlsTrusted bool
	}
	tests := []struct {
		mode, enforce string
		want          want
	}{
		{"disabled", "disabled", want{plainGet: true, plainSync: true}},
		{"replica_ssl", "enabled", want{plainGet: true, tlsTrusted: true}},
		{"replica_ssl", "disabled", want{plainGet: true, tlsNoCert: true, tlsUntrusted: true, tlsTrusted: true}},
		{"enabled", "enabled", want{tlsTrusted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.mode+" client auth "+tt.enforce, func(t *testing.T) {
			w := newWorld(t)
			syncer, syncerKey := w.west.SyncerCert()
			if err := w.east.MutateDB(1, func(c *simulator.DBConfig) {
				c.TLSMode, c.EnforceClientAuthentication = tt.mode, tt.enforce
				c.AuthenticationSSLClientCerts = []string{syncer, "not a certificate"}
			}); err != nil {
				t.Fatal(err)
			}
			ep := dptest.Endpoint(t, w.plane, "east", 1)
			proxy, _ := w.east.ProxyCert()
			ctx := t.Context()
			// The plane applies changes asynchronously: wait for the mode's TLS listener to be in place.
			dptest.Eventually(t, 10*time.Second, "the TLS endpoint follows tls_mode", func() (bool, string) {
				err := dptest.TLSClient(t, w.plane, "east", 1, proxy, "east.redis.local", syncer, syncerKey).Ping(ctx).Err()
				return (err == nil) == tt.want.tlsTrusted, errString(err)
			})
			got := want{
				plainGet:     dptest.Plain(t, w.plane, "east", 1).Ping(ctx).Err() == nil,
				plainSync:    dptest.ReplicationAllowed(t, ep.PlainAddr, ep.Password),
				tlsNoCert:    dptest.TLSClient(t, w.plane, "east", 1, proxy, "east.redis.local", "", "").Ping(ctx).Err() == nil,
				tlsUntrusted: dptest.TLSClient(t, w.plane, "east", 1, proxy, "east.redis.local", other.CertPEM, other.KeyPEM).Ping(ctx).Err() == nil,
				tlsTrusted:   dptest.TLSClient(t, w.plane, "east", 1, proxy, "east.redis.local", syncer, syncerKey).Ping(ctx).Err() == nil,
			}
			if got != tt.want {
				t.Errorf("endpoints serve %+v, want %+v", got, tt.want)
			}
		})
	}
}

func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestSameSubjectTrustAnchors pins down how redis-server (OpenSSL) treats a trust list holding the old
// and the new syncer certificate of a cluster, which share their subject: the new one is found only
// when it carries an authority key identifier. Trust first, swap second depends on it.
func TestSameSubjectTrustAnchors(t *testing.T) {
	tests := []struct {
		name           string
		authorityKeyID bool
		want           string
	}{
		{"new certificate with an authority key identifier", true, "in-sync"},
		{"new certificate without one", false, "out-of-sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.secure(t, "replica_ssl", "enabled")
			dptest.WaitLink(t, w.sim, "west", 1, "in-sync", "")
			next := dptest.SelfSigned(t, "west.redis.local", certs.KindSyncer, tt.authorityKeyID)
			if err := w.east.MutateDB(1, func(c *simulator.DBConfig) { // trust first (the old one stays first)
				c.AuthenticationSSLClientCerts = append(c.AuthenticationSSLClientCerts, next.CertPEM)
			}); err != nil {
				t.Fatal(err)
			}
			if err := w.west.SetSyncerCert(next.CertPEM, next.KeyPEM); err != nil { // swap second
				t.Fatal(err)
			}
			l := dptest.WaitLink(t, w.sim, "west", 1, tt.want, "")
			t.Logf("after the swap: %s %q", l.Status, l.LastError)
		})
	}
}

// TestSyncerChangeRestartsTheLink: the destination's new syncer certificate is what the next
// connection presents; a source that does not trust it refuses the link, with the reason in
// last_error, and the link recovers when the source trusts it.
func TestSyncerChangeRestartsTheLink(t *testing.T) {
	w := newWorld(t)
	w.secure(t, "replica_ssl", "enabled")
	dptest.WaitLink(t, w.sim, "west", 1, "in-sync", "")
	next := dptest.SelfSigned(t, "west.redis.local", certs.KindSyncer, true)
	if err := w.west.SetSyncerCert(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	dptest.WaitLink(t, w.sim, "west", 1, "out-of-sync", "unknown ca")
	dptest.Eventually(t, 10*time.Second, "a down link's lag counts the time it has been down", func() (bool, string) {
		l := dptest.LinkOf(t, w.sim, "west", 1)
		return l.Status == "out-of-sync" && l.Lag > 0, l.Status + " lag " + strconv.FormatInt(l.Lag, 10)
	})
	if err := w.east.MutateDB(1, func(c *simulator.DBConfig) {
		c.AuthenticationSSLClientCerts = append(c.AuthenticationSSLClientCerts, next.CertPEM)
	}); err != nil {
		t.Fatal(err)
	}
	dptest.WaitLink(t, w.sim, "west", 1, "in-sync", "")
	src, dst := dptest.Plain(t, w.plane, "east", 1), dptest.Plain(t, w.plane, "west", 1)
	dptest.Arrives(t, src, dst, "after-rotation", "still replicating")
}

func TestMissingRedisServer(t *testing.T) {
	_, err := dataplane.New(t.Context(), dataplane.Options{RedisServer: filepath.Join(t.TempDir(), "redis-server")})
	if !errors.Is(err, dataplane.ErrNoRedisServer) {
		t.Fatalf("New without redis-server: %v, want ErrNoRedisServer", err)
	}
	if !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("the error does not say how to install it: %v", err)
	}
}

// TestCloseStopsEverything: after Close no endpoint answers, no redis-server of the plane runs and
// its folder (keys included) is gone.
func TestCloseStopsEverything(t *testing.T) {
	w := newWorld(t)
	w.secure(t, "replica_ssl", "enabled")
	dptest.WaitLink(t, w.sim, "west", 1, "in-sync", "")
	east, west := dptest.Endpoint(t, w.plane, "east", 1), dptest.Endpoint(t, w.plane, "west", 1)
	dir := w.plane.Dir()
	if n := processesUnder(t, dir); n != 2 {
		t.Errorf("%d redis-server processes run from %s, want 2", n, dir)
	}
	if err := w.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.plane.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{east.PlainAddr, east.TLSAddr, west.PlainAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", addr)
		}
	}
	if n := processesUnder(t, dir); n != 0 {
		t.Errorf("%d redis-server processes still run from %s after Close", n, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the plane's folder is still there: %v", err)
	}
	if err := w.plane.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// processesUnder counts the processes running in a folder under dir (Linux /proc; redis-server
// rewrites its command line, not its working directory).
func processesUnder(t *testing.T, dir string) int {
	t.Helper()
	cwds, err := filepath.Glob("/proc/[0-9]*/cwd")
	if err != nil || len(cwds) == 0 {
		t.Skip("no /proc here")
	}
	n := 0
	for _, f := range cwds {
		if target, err := os.Readlink(f); err == nil && strings.HasPrefix(target, dir+string(os.PathSeparator)) {
			n++
		}
	}
	return n
}
