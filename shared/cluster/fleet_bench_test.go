package cluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/cluster"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

const (
	fleetClusters = 8
	fleetDBs      = 1000
)

// fleetFields are the fields the reconciler lists (reconcile.DBFields, repeated here because the
// reconciler sits above this package).
var fleetFields = []string{
	"uid", "name", "status", "tls_mode", "enforce_client_authentication",
	"authentication_ssl_client_certs", "replica_sources", "endpoints",
}

// startFleet starts fleetClusters simulated clusters of fleetDBs databases each, configured as
// replica-tls leaves them: database j of cluster i replicates database j of the next two clusters
// over TLS (server_cert: their proxy certificates) and trusts the syncer certificates of the two
// clusters replicating from it plus two application client certificates. Certificates are RSA 2048,
// the size real clusters issue.
func startFleet(b *testing.B) *simulator.Sim {
	b.Helper()
	name := func(i int) string { return fmt.Sprintf("c%d", (i+fleetClusters)%fleetClusters) }
	var topo simulator.Topology
	for i := range fleetClusters {
		spec := simulator.ClusterSpec{Name: name(i), FQDN: name(i) + ".redis.local",
			Users: []simulator.UserSpec{{Username: "admin@example.com", Password: "pw-" + name(i), Role: simulator.RoleAdmin}}}
		for j := 1; j <= fleetDBs; j++ {
			spec.Databases = append(spec.Databases, simulator.DBSpec{
				UID: j, Name: fmt.Sprintf("db-%d", j), Port: 10000 + i*fleetDBs + j,
				AuthenticationAdminPass: fmt.Sprintf("pass-%d-%d", i, j),
				ReplicaOf:               []simulator.ReplicaOfSpec{{Cluster: name(i + 1), DB: j}, {Cluster: name(i + 2), DB: j}},
			})
		}
		topo.Clusters = append(topo.Clusters, spec)
	}
	s, err := simulator.New(topo, simulator.Options{KeyType: certs.RSA2048})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })

	var apps []string
	for k := range 2 {
		kp, err := certs.Generate(certs.Profile{FQDN: fmt.Sprintf("app-%d.example.com", k), Kind: certs.KindSyncer,
			NotBefore: time.Now(), KeyType: certs.RSA2048})
		if err != nil {
			b.Fatal(err)
		}
		apps = append(apps, kp.CertPEM)
	}
	syncer, proxy := map[string]string{}, map[string]string{}
	for i := range fleetClusters {
		syncer[name(i)], _ = s.Cluster(name(i)).SyncerCert()
		proxy[name(i)], _ = s.Cluster(name(i)).ProxyCert()
	}
	// Sources first (trust lists, TLS on: established plain links survive), then destinations (TLS
	// links that connect, since their sources already trust them).
	for i := range fleetClusters {
		h := s.Cluster(name(i))
		for j := 1; j <= fleetDBs; j++ {
			if err := h.MutateDB(j, func(c *simulator.DBConfig) {
				c.TLSMode, c.EnforceClientAuthentication = "replica_ssl", "enabled"
				c.AuthenticationSSLClientCerts = []string{syncer[name(i-1)], syncer[name(i-2)], apps[0], apps[1]}
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := range fleetClusters {
		h := s.Cluster(name(i))
		for j := 1; j <= fleetDBs; j++ {
			if err := h.MutateDB(j, func(c *simulator.DBConfig) {
				for k := range c.ReplicaSources {
					c.ReplicaSources[k].Encryption = true
					c.ReplicaSources[k].ServerCert = proxy[name(i+1+k)]
				}
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// fleetDBOK checks one listed database looks as startFleet made it.
func fleetDBOK(db reapi.DB) error {
	if len(db.AuthenticationSSLClientCerts) != 4 || len(db.ReplicaSources) != 2 || len(db.Endpoints) != 1 {
		return fmt.Errorf("db %d: %d trusted certificates, %d replica sources, %d endpoints; want 4, 2, 1",
			db.UID, len(db.AuthenticationSSLClientCerts), len(db.ReplicaSources), len(db.Endpoints))
	}
	for _, r := range db.ReplicaSources {
		if !r.Encryption || r.ServerCert == "" || r.Status != reapi.LinkInSync {
			return fmt.Errorf("db %d: replica source %d: encryption %v, server_cert %d bytes, status %q", db.UID, r.UID,
				r.Encryption, len(r.ServerCert), r.Status)
		}
	}
	return nil
}

// heapPeak samples the heap (live and not yet swept objects) until stop is called, and returns
// the highest sample.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		peak := read()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, read())
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// BenchmarkListFleetPeakHeap lists 8 clusters of 1,000 realistic databases in parallel through the
// client over pinned HTTPS with the reconciler's fields, and reports the peak heap of the whole
// process (simulator included) while the lists are fetched and held: peak-heap-MB. baseline-heap-MB
// is the heap before the first list (the simulated fleet and the clients), lists-MB what the eight
// decoded lists keep alive, body-MB the size of one cluster's list response. Target: peak below 128 MB.
func BenchmarkListFleetPeakHeap(b *testing.B) {
	s := startFleet(b)
	var clients []*cluster.Client
	for _, info := range s.Clusters() {
		c, err := cluster.New(cluster.Config{Name: info.Name, URL: info.URL, Username: info.AdminUser,
			Password: info.AdminPassword, CACert: info.APICertPEM})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	body := fleetBodySize(b, s.Clusters()[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	runtime.GC()
	baseline := heapPeak()()
	stop := heapPeak()
	var lists [][]reapi.DB
	for b.Loop() {
		lists = make([][]reapi.DB, len(clients))
		errs := make([]error, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() { lists[i], errs[i] = c.ListDBs(ctx, fleetFields...) })
		}
		wg.Wait()
		for i, dbs := range lists {
			if errs[i] != nil {
				b.Fatal(errs[i])
			}
			if len(dbs) != fleetDBs {
				b.Fatalf("cluster %d: %d dbs, want %d", i, len(dbs), fleetDBs)
			}
			for _, k := range []int{0, fleetDBs / 2, fleetDBs - 1} {
				if err := fleetDBOK(dbs[k]); err != nil {
					b.Fatalf("cluster %d: %v", i, err)
				}
			}
		}
	}
	peak := stop()
	runtime.GC()
	held := heapPeak()() - baseline // what the decoded lists of the whole fleet keep alive
	runtime.KeepAlive(lists)        // held until every list is in, as LoadFleet holds them
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(baseline)/1e6, "baseline-heap-MB")
	b.ReportMetric(float64(held)/1e6, "lists-MB")
	b.ReportMetric(float64(body)/1e6, "body-MB")
}

// fleetBodySize fetches one cluster's list as the client asks for it and counts its bytes.
func fleetBodySize(b *testing.B, info simulator.ClusterInfo) int64 {
	b.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(info.APICertPEM)) {
		b.Fatal("no API certificate to pin")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	req, err := http.NewRequest(http.MethodGet, info.URL+"/v1/bdbs?fields="+strings.Join(fleetFields, ","), nil)
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth(info.AdminUser, info.AdminPassword)
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("list: status %d, %v", resp.StatusCode, err)
	}
	return n
}
