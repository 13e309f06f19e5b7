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
	mu        sync.Mutex
	calls     map[string]int
	total     int
	latency   time.Duration
	rates     map[string]errorRate
	failNext  map[string]failRule
	dropNext  map[string]int
	emptyNext map[string]int // successful answers to send without a body
	padding   map[string]int // bytes of padding per JSON object of a successful answer
	partial   int            // certificate updates to answer with 409 "not all nodes have been updated"
	rng       *rand.Rand
}

type errorRate struct {
	rate   float64
	status int
}

type failRule struct{ n, status int }

func newFaults(seed uint64, cluster string) *faults {
	return &faults{
		calls:     map[string]int{},
		rates:     map[string]errorRate{},
		failNext:  map[string]failRule{},
		dropNext:  map[string]int{},
		emptyNext: map[string]int{},
		padding:   map[string]int{},
		rng:       rand.New(rand.NewPCG(seed, fnv64(cluster))),
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

func (f *faults) setEmptyNext(route string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emptyNext[route] = n
}

func (f *faults) setPadding(route string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 {
		delete(f.padding, route)
		return
	}
	f.padding[route] = n
}

func (f *faults) setPartial(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial = n
}

// shape picks how a successful answer on route is sent: without a body, or with its JSON objects
// padded by that many bytes.
func (f *faults) shape(route string) (empty bool, padding int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, key := range []string{route, AnyRoute} {
		if n := f.emptyNext[key]; n > 0 {
			f.emptyNext[key] = n - 1
			return true, 0
		}
	}
	for _, key := range []string{route, AnyRoute} {
		if n, ok := f.padding[key]; ok {
			return false, n
		}
	}
	return false, 0
}

// takePartial reports whether this certificate update is one to answer with a 409.
func (f *faults) takePartial() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partial > 0 {
		f.partial--
		return true
	}
	return false
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = 0
	clear(f.rates)
	clear(f.failNext)
	clear(f.dropNext)
	clear(f.emptyNext)
	clear(f.padding)
	f.partial = 0
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
