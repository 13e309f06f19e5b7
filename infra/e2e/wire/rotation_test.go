package wire

import (
	"fmt"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/dataplane/dptest"
	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
)

// newCert issues a certificate with the profile of a cluster's syncer or proxy certificate, carrying
// an authority key identifier: without one, redis-server cannot tell the old and the new syncer
// certificate apart while both are trusted (see dataplane's TestSameSubjectTrustAnchors).
func newCert(t *testing.T, fqdn string, kind certs.Kind) certs.KeyPair {
	t.Helper()
	return dptest.SelfSigned(t, fqdn, kind, true)
}

// securedWithCounter secures east/1 -> west/1 with the function (replica scope, so that the writer
// can use the plain endpoint) and starts the counter harness on it.
func securedWithCounter(t *testing.T) (*fixture, *counter) {
	t.Helper()
	f := newFixture(t)
	f.invoke(`{"destination":{"cluster":"west","database":1},"tls_scope":"replica"}`)
	east := f.endpoint("east")
	replica := dptest.Plain(t, f.plane, "west", 1)
	dptest.Eventually(t, 20*time.Second, "the replica replicates over TLS", func() (bool, string) {
		in := dptest.Info(t, replica, "replication")
		return in["master_port"] == portOf(east.TLSAddr) && in["master_link_status"] == "up", in["master_link_status"]
	})
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
	return f, startCounter(t, dptest.Plain(t, f.plane, "east", 1), replica, "counter")
}

// TestSwapBeforeTrustFailsOnTheWire installs a new syncer certificate on the destination cluster before
// the source trusts it: the next connection is refused by the source's redis-server, replication stops,
// and the harness measures the outage. Trusting the certificate afterwards repairs the link.
func TestSwapBeforeTrustFailsOnTheWire(t *testing.T) {
	f, c := securedWithCounter(t)
	next := newCert(t, "west.redis.local", certs.KindSyncer)
	if err := f.west.SetSyncerCert(next.CertPEM, next.KeyPEM); err != nil { // swap, no trust
		t.Fatal(err)
	}
	f.west.DropConnections() // force a reconnect (the syncer restart does too)

	link := dptest.WaitLink(t, f.st.Sim, "west", 1, "out-of-sync", "unknown ca")
	t.Logf("wrong order: link %s, last_error %q", link.Status, link.LastError)
	replica := dptest.Plain(t, f.plane, "west", 1)
	if st := dptest.Info(t, replica, "replication")["master_link_status"]; st != "down" {
		t.Errorf("replica's master_link_status = %s, want down", st)
	}
	// The source goes on, the replica does not.
	dptest.Eventually(t, 20*time.Second, "the replica falls behind", func() (bool, string) {
		written, seen := c.behind()
		return written-seen >= 20, fmt.Sprintf("source %d, replica %d", written, seen)
	})

	// Repair: the source trusts the new certificate; the replica's own retries get through.
	if err := f.east.MutateDB(1, func(cfg *simulator.DBConfig) {
		cfg.AuthenticationSSLClientCerts = append(cfg.AuthenticationSSLClientCerts, next.CertPEM)
	}); err != nil {
		t.Fatal(err)
	}
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
	dptest.Eventually(t, 20*time.Second, "the replica catches up", func() (bool, string) {
		written, seen := c.behind()
		return seen >= written-1, fmt.Sprintf("source %d, replica %d", written, seen)
	})
	gap := c.finish(t)
	t.Logf("wrong order (swap before trust): longest gap %v", gap)
	// The replica stood still for at least the 20 writes above (10 ms apart at the fastest).
	if gap < 200*time.Millisecond {
		t.Errorf("longest gap %v: the harness did not see the outage", gap)
	}
}

// TestTrustFirstRotationsKeepReplicating rotates by hand in the order docs/architecture.md prescribes, through the
// simulator's handles as an operator would: the syncer certificate (trust first, swap second, then
// drop the old one) and the proxy certificate (swap, then update the destination's entry at once). The
// harness reports the longest gap; the replica must end equal to the source.
func TestTrustFirstRotationsKeepReplicating(t *testing.T) {
	f, c := securedWithCounter(t)
	oldSyncer, _ := f.west.SyncerCert()

	// Syncer: trust first...
	next := newCert(t, "west.redis.local", certs.KindSyncer)
	if err := f.east.MutateDB(1, func(cfg *simulator.DBConfig) {
		cfg.AuthenticationSSLClientCerts = append(cfg.AuthenticationSSLClientCerts, next.CertPEM)
	}); err != nil {
		t.Fatal(err)
	}
	// ...swap second: the syncer restarts and reconnects presenting the new certificate.
	if err := f.west.SetSyncerCert(next.CertPEM, next.KeyPEM); err != nil {
		t.Fatal(err)
	}
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
	// The old certificate is dropped and a reconnect forced: only the new one can pass now.
	if err := f.east.MutateDB(1, func(cfg *simulator.DBConfig) {
		kept := cfg.AuthenticationSSLClientCerts[:0]
		for _, p := range cfg.AuthenticationSSLClientCerts {
			if !certs.SameCert(p, oldSyncer) {
				kept = append(kept, p)
			}
		}
		cfg.AuthenticationSSLClientCerts = kept
	}); err != nil {
		t.Fatal(err)
	}
	f.west.DropConnections()
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")

	// Proxy: the source serves the new certificate to new connections, the destination follows.
	proxy := newCert(t, "east.redis.local", certs.KindProxy)
	if err := f.east.SetProxyCert(proxy.CertPEM, proxy.KeyPEM); err != nil {
		t.Fatal(err)
	}
	if err := f.west.MutateDB(1, func(cfg *simulator.DBConfig) { cfg.ReplicaSources[0].ServerCert = proxy.CertPEM }); err != nil {
		t.Fatal(err)
	}
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")
	f.west.DropConnections() // a new connection must verify the new proxy certificate
	dptest.WaitLink(t, f.st.Sim, "west", 1, "in-sync", "")

	gap := c.finish(t)
	t.Logf("trust-first syncer rotation and proxy rotation: longest gap %v (reads every %v)", gap, readEvery)
}
