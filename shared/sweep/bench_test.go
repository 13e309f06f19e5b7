package sweep_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

const (
	benchClusters = 10
	benchLinks    = 50 // per cluster: 50 sources and 50 destinations, 100 databases
	benchDBs      = benchClusters * 2 * benchLinks
	benchLatency  = 20 * time.Millisecond
)

// BenchmarkSweep1000 sweeps 1,000 databases (500 links) on 10 simulated clusters, every API call
// delayed 20 ms, with the default options and one link at a time, on a converged fleet and on one
// where every link needs both sides changed. Reported per sweep: wall time (s/sweep), cluster API
// requests per database as the simulator counted them (calls/db), writes, and the peak Go heap of the
// process, the in-process simulator included (peak-heap-MB).
//
// Audit events go to memory here: through moto's EventBridge and its SQS tap each costs about 0.3 s,
// which would measure moto. Secrets Manager, DynamoDB and the clusters' HTTPS APIs are the real
// local ones. Run it with: go test -run '^$' -bench Sweep1000 -benchtime 1x ./shared/sweep/
func BenchmarkSweep1000(b *testing.B) {
	st := testkit.NewStack(b, motoURL, testkit.Options{Topology: ring(benchClusters, benchLinks), Sim: simulator.Options{ActionDuration: time.Millisecond}})
	app := lambdaapp.New(testkit.AppConfig(st), st.AWS, discard{}) // info level: the benchmark measures the sweep, not debug logs
	table := "bench-notices"
	ddb := dynamodb.NewFromConfig(st.AWS)
	if err := sweep.CreateNoticeTable(context.Background(), ddb, table); err != nil {
		b.Fatal(err)
	}
	newSweeper := func(concurrency int) *sweep.Sweeper {
		return sweep.New(sweep.Config{
			Registry: app.Registry, Certs: app.Registry, Notices: sweep.NewDynamoNotices(ddb, table),
			RecordCertificates: app.RecordFleetCertificates, Reconciler: app.Reconciler, Policy: reconcile.DefaultPolicy(),
			Options: sweep.Options{Concurrency: concurrency, Poll: 50 * time.Millisecond}, Now: time.Now,
		})
	}
	run := func(b *testing.B, s *sweep.Sweeper) sweep.Report {
		b.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		rec := audit.NewRecorder(&audit.Memory{}, audit.Run{Actor: "bench", Trigger: audit.Trigger{Kind: "bench"}}, time.Now)
		rep, err := s.Run(ctx, rec, sweep.Request{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Links.Seen != benchDBs/2 || rep.Links.Failed+rep.Links.Rejected+rep.Links.Skipped != 0 {
			b.Fatalf("sweep: %+v", rep.Links)
		}
		return rep
	}
	setLatency := func(d time.Duration) {
		for _, c := range st.Sim.Clusters() {
			st.Sim.Cluster(c.Name).SetLatency(d)
		}
	}
	// Converge once without latency: records the clusters' certificates and secures every link.
	run(b, newSweeper(0))

	for _, fleet := range []struct {
		name    string
		prepare func(b *testing.B)
	}{
		{"converged", func(*testing.B) {}},
		{"all-links-need-changes", func(b *testing.B) { unsecureAll(b, st.Sim) }},
	} {
		for _, mode := range []struct {
			name        string
			concurrency int
		}{{"default-concurrency", 0}, {"one-at-a-time", 1}} {
			b.Run(fleet.name+"/"+mode.name, func(b *testing.B) {
				s := newSweeper(mode.concurrency)
				var calls, writes int
				var peak uint64
				for b.Loop() {
					b.StopTimer()
					fleet.prepare(b)
					for _, c := range st.Sim.Clusters() {
						st.Sim.Cluster(c.Name).ResetCalls()
					}
					setLatency(benchLatency)
					stop := sampleHeap(&peak)
					b.StartTimer()

					rep := run(b, s)

					b.StopTimer()
					stop()
					setLatency(0)
					for _, c := range st.Sim.Clusters() {
						calls += testkit.Calls(st, c.Name)
						writes += testkit.Writes(st, c.Name)
					}
					if fleet.name == "converged" && (rep.Links.InSync != benchDBs/2 || rep.Writes != 0) {
						b.Fatalf("converged fleet: %+v, %d writes", rep.Links, rep.Writes)
					}
					if fleet.name != "converged" && rep.Links.Repaired != benchDBs/2 {
						b.Fatalf("fleet needing changes: %+v", rep.Links)
					}
					b.StartTimer()
				}
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/sweep")
				b.ReportMetric(float64(calls)/float64(b.N)/benchDBs, "calls/db")
				b.ReportMetric(float64(writes)/float64(b.N), "writes/sweep")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// unsecureAll undoes every link's TLS by hand: sources back to tls_mode disabled with no trusted
// certificate, destinations' entries unencrypted without a server certificate.
func unsecureAll(b *testing.B, sim *simulator.Sim) {
	b.Helper()
	for _, c := range sim.Clusters() {
		h := sim.Cluster(c.Name)
		for uid := 1; uid <= 2*benchLinks; uid++ {
			err := h.MutateDB(uid, func(cfg *simulator.DBConfig) {
				cfg.TLSMode, cfg.EnforceClientAuthentication, cfg.AuthenticationSSLClientCerts = "disabled", "disabled", nil
				for i := range cfg.ReplicaSources {
					cfg.ReplicaSources[i].Encryption, cfg.ReplicaSources[i].ServerCert = false, ""
				}
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// sampleHeap records the peak heap in use until the returned function is called.
func sampleHeap(peak *uint64) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// discard is a log sink for the benchmark.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
