package rotation_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/rotation"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// BenchmarkProxyRotationWindow measures the proxy rotation window (new replication connections fail
// between the swap and the destination entry update): window-ms as setSecret measures it (swap to last
// destination updated), max-out-of-sync-ms as a probe sampling the link every ~2ms sees it (simulator
// in ReconnectOnRead mode). The audit events go to EventBridge (moto_server) or, to see what the
// clusters alone cost, to memory. One iteration is one whole rotation.
//
//	go test -run '^$' -bench ProxyRotationWindow -benchtime 5x ./shared/rotation/
func BenchmarkProxyRotationWindow(b *testing.B) {
	for _, bc := range []struct {
		sink string
		n    int // linked databases
	}{{"eventbridge", 1}, {"memory", 1}, {"eventbridge", 4}, {"memory", 4}} {
		b.Run(fmt.Sprintf("%s/%d-links", bc.sink, bc.n), func(b *testing.B) {
			topo := pairTopology(bc.n)
			e := newEnv(b, &topo, simulator.Options{ReconnectOnRead: true})
			sink := bc.sink
			if sink == "memory" {
				mem := &audit.Memory{}
				e.auditor = func(rotation.Auditor) rotation.Auditor {
					return audit.NewRecorder(mem, audit.Run{Actor: "bench", Trigger: audit.Trigger{Kind: "bench"}}, nil)
				}
			}
			e.enableRotation("east", secretstore.Proxy)
			arn := e.arn("east", secretstore.Proxy)
			var windows, outages []float64
			b.ResetTimer()
			for range b.N {
				token := e.startRotation("east", secretstore.Proxy)
				e.mustStep(rotation.CreateSecret, arn, token)
				p := startProbe(b, e.st.Sim, "west", bc.n) // the destination updated last, or in parallel
				p.waitSamples(b, 3)
				res := e.mustStep(rotation.SetSecret, arn, token)
				p.halt()
				e.mustStep(rotation.TestSecret, arn, token)
				e.mustStep(rotation.FinishSecret, arn, token)
				windows = append(windows, float64(res.WindowMs))
				outages = append(outages, float64(p.maxBad)/float64(time.Millisecond))
			}
			b.StopTimer()
			b.ReportMetric(mean(windows), "window-ms")
			b.ReportMetric(slices.Max(outages), "max-out-of-sync-ms")
			b.ReportMetric(0, "ns/op") // a rotation's duration is mostly setup and polling, not the point
		})
	}
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
