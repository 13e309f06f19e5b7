package simulator

import (
	"maps"
	"math/rand/v2"
	"sync"
	"time"
)

// AnyRoute makes a fault apply to every route.
const AnyRoute = "*"

// faults holds one cluster's injected faults and request counters. Routes are keyed like the counters:
// "GET /v1/bdbs/{uid}".
type faults struct {
	mu       sync.Mutex
	calls    map[string]int
	total    int
	latency  time.Duration
	rates    map[string]errorRate
	failNext map[string]failRule
	dropNext map[string]int
	rng      *rand.Rand
}

type errorRate struct {
	rate   float64
	status int
}

type failRule struct{ n, status int }

func newFaults(seed uint64, cluster string) *faults {
	return &faults{
		calls:    map[string]int{},
		rates:    map[string]errorRate{},
		failNext: map[string]failRule{},
		dropNext: map[string]int{},
		rng:      rand.New(rand.NewPCG(seed, fnv64(cluster))),
	}
}

// verdict is what to do with one request before it is handled.
type verdict struct {
	latency time.Duration
	drop    bool
	status  int // non-zero: fail with this status
}

// DryRunSuffix marks the extra counter of a route's dry-run PUTs in Calls: "PUT /v1/bdbs/{uid}"
// counts every PUT, "PUT /v1/bdbs/{uid} (dry_run)" only those with dry_run=true.
const DryRunSuffix = " (dry_run)"

// note counts key in Calls without counting a call (TotalCalls stays the same).
func (f *faults) note(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[key]++
}

// decide counts the call and picks its fault. DropNext wins over FailNext, which wins over error rates.
func (f *faults) decide(route string) verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[route]++
	f.total++
	v := verdict{latency: f.latency}
	for _, key := range []string{route, AnyRoute} {
		if n := f.dropNext[key]; n > 0 {
			f.dropNext[key] = n - 1
			v.drop = true
			return v
		}
	}
	for _, key := range []string{route, AnyRoute} {
		if r := f.failNext[key]; r.n > 0 {
			r.n--
			f.failNext[key] = r
			v.status = r.status
			return v
		}
	}
	for _, key := range []string{route, AnyRoute} {
		if r, ok := f.rates[key]; ok && f.rng.Float64() < r.rate {
			v.status = r.status
			return v
		}
	}
	return v
}

func (f *faults) setLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

func (f *faults) setErrorRate(route string, rate float64, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rate <= 0 {
		delete(f.rates, route)
		return
	}
	f.rates[route] = errorRate{rate: rate, status: status}
}

func (f *faults) setFailNext(route string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[route] = failRule{n: n, status: status}
}

func (f *faults) setDropNext(route string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropNext[route] = n
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = 0
	clear(f.rates)
	clear(f.failNext)
	clear(f.dropNext)
}

func (f *faults) counts() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls), f.total
}

func (f *faults) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
	f.total = 0
}
