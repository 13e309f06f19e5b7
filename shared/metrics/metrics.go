// Package metrics records a Lambda invocation's CloudWatch metrics and writes them, at the end of
// the invocation, as CloudWatch embedded metric format (EMF) log lines: CloudWatch Logs extracts the
// metrics from the function's log group, so no PutMetricData call (and no IAM grant or latency for
// one) is needed.
//
// A handler makes one Recorder per invocation, records into it from any goroutine, and calls Flush
// once before returning.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Dim is one dimension of a metric, such as {DimCluster, "east"}.
type Dim struct {
	Name, Value string
}

// kind says how repeated values of one metric combine before Flush.
type kind uint8

const (
	kindSum     kind = iota + 1 // Add: values accumulate
	kindMin                     // Min: the smallest value is kept
	kindLast                    // Set: the last value is kept
	kindObserve                 // Observe: every value is kept, for percentiles
)

func (k kind) String() string {
	switch k {
	case kindSum:
		return "Add"
	case kindMin:
		return "Min"
	case kindLast:
		return "Set"
	case kindObserve:
		return "Observe"
	}
	return "unknown"
}

type metric struct {
	unit   Unit
	kind   kind
	values []float64 // one value, except for kindObserve
}

// series is the metrics recorded under one dimension set; it becomes one EMF line (or more).
type series struct {
	dims    []Dim    // service first, then the caller's dimensions sorted by name
	names   []string // metric names in the order first recorded
	metrics map[string]*metric
}

// maxProblems bounds the invalid recordings a Recorder remembers, so a loop recording a bad name
// cannot grow memory; Flush reports how many more there were.
const maxProblems = 10

// Recorder collects one invocation's metrics. It is safe for concurrent use.
type Recorder struct {
	w      io.Writer
	cfg    Config
	cfgErr error

	mu       sync.Mutex
	sets     map[string]*series
	order    []string // series keys in the order first recorded
	problems []error
	dropped  int

	writeMu sync.Mutex // one Flush writes at a time, so lines from two flushes do not interleave
	buf     []byte     // a line being encoded; guarded by writeMu
}

// New returns a Recorder that writes to w (os.Stdout in Lambda). A Config that fails Validate is
// reported by every Flush, which then writes nothing.
func New(w io.Writer, cfg Config) *Recorder {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{w: w, cfg: cfg, sets: map[string]*series{}}
	if !cfg.Disabled {
		r.cfgErr = cfg.Validate()
	}
	return r
}

// Add adds v to the metric name (counts: LinksSeen, ClusterAPICalls, ...).
func (r *Recorder) Add(name string, unit Unit, v float64, dims ...Dim) {
	r.record(kindSum, name, unit, v, dims)
}

// Min keeps the smallest v recorded for name under dims (CertificateDaysToExpiry: the certificate
// closest to expiry is the one an alarm must see).
func (r *Recorder) Min(name string, unit Unit, v float64, dims ...Dim) {
	r.record(kindMin, name, unit, v, dims)
}

// Set keeps the last v recorded for name under dims (a gauge).
func (r *Recorder) Set(name string, unit Unit, v float64, dims ...Dim) {
	r.record(kindLast, name, unit, v, dims)
}

// Observe keeps every v recorded for name under dims, so CloudWatch can compute percentiles
// (ClusterAPILatencyMs: one value per call).
func (r *Recorder) Observe(name string, unit Unit, v float64, dims ...Dim) {
	r.record(kindObserve, name, unit, v, dims)
}

func (r *Recorder) record(k kind, name string, unit Unit, v float64, extra []Dim) {
	if r.cfg.Disabled {
		return
	}
	dims, err := r.dimensions(extra)
	if err == nil {
		err = checkMetric(name, unit, v, dims)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.problem(fmt.Errorf("metric %q: %w", name, err))
		return
	}
	key := seriesKey(dims)
	s := r.sets[key]
	if s == nil {
		s = &series{dims: dims, metrics: map[string]*metric{}}
		r.sets[key] = s
		r.order = append(r.order, key)
	}
	m := s.metrics[name]
	if m == nil {
		s.metrics[name] = &metric{unit: unit, kind: k, values: []float64{v}}
		s.names = append(s.names, name)
		return
	}
	switch {
	case m.kind != k:
		r.problem(fmt.Errorf("metric %q: recorded with %s, now with %s", name, m.kind, k))
	case m.unit != unit:
		r.problem(fmt.Errorf("metric %q: recorded in %s, now in %s", name, m.unit, unit))
	case k == kindSum:
		m.values[0] += v
	case k == kindMin:
		m.values[0] = min(m.values[0], v)
	case k == kindLast:
		m.values[0] = v
	case k == kindObserve:
		m.values = append(m.values, v)
	}
}

// problem remembers an invalid recording for Flush to report. Callers hold r.mu.
func (r *Recorder) problem(err error) {
	if len(r.problems) < maxProblems {
		r.problems = append(r.problems, err)
		return
	}
	r.dropped++
}

// dimensions returns the service dimension followed by extra sorted by name, or why extra is unusable.
func (r *Recorder) dimensions(extra []Dim) ([]Dim, error) {
	if 1+len(extra) > MaxDimensions {
		return nil, fmt.Errorf("%d dimensions with service, more than %d", 1+len(extra), MaxDimensions)
	}
	dims := make([]Dim, 0, 1+len(extra))
	dims = append(dims, Dim{DimService, r.cfg.Service})
	sorted := slices.Clone(extra)
	slices.SortFunc(sorted, func(a, b Dim) int { return strings.Compare(a.Name, b.Name) })
	for i, d := range sorted {
		if err := checkDimName(d.Name); err != nil {
			return nil, fmt.Errorf("dimension name %q: %w", d.Name, err)
		}
		if d.Name == DimService {
			return nil, fmt.Errorf("dimension %q is set from the Config", DimService)
		}
		if i > 0 && sorted[i-1].Name == d.Name {
			return nil, fmt.Errorf("dimension %q given twice", d.Name)
		}
		if err := checkDimValue(d.Value); err != nil {
			return nil, fmt.Errorf("dimension %s=%q: %w", d.Name, d.Value, err)
		}
		dims = append(dims, d)
	}
	return dims, nil
}

func checkMetric(name string, unit Unit, v float64, dims []Dim) error {
	if err := checkName(name); err != nil {
		return err
	}
	// Metric values and dimension values are members of the same JSON object.
	for _, d := range dims {
		if d.Name == name {
			return fmt.Errorf("same name as a dimension")
		}
	}
	if !unit.Valid() {
		return fmt.Errorf("unit %q is not a CloudWatch unit", unit)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("value %v is not a finite number", v)
	}
	return nil
}

// seriesKey identifies a dimension set. Validated names and values hold no control bytes, so
// the separators cannot occur inside them.
func seriesKey(dims []Dim) string {
	var b strings.Builder
	for _, d := range dims {
		b.WriteString(d.Name)
		b.WriteByte(0)
		b.WriteString(d.Value)
		b.WriteByte(1)
	}
	return b.String()
}

// Flush writes everything recorded since the last Flush as EMF lines, one JSON object per line, and
// starts afresh. Each dimension set gets its own line; a set with more metrics or values than one
// directive may hold is split over several lines. Metrics recorded with a bad name, unit, value or
// dimension were left out, and Flush returns an error naming them after writing the rest.
//
// A cancelled ctx does not stop the write: the metrics of an invocation that ran out of time
// (RotationFailed, LinksFailed) are the ones an alarm needs, and writing them to stdout is quick.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	sets, order, problems, dropped := r.sets, r.order, r.problems, r.dropped
	r.sets, r.order, r.problems, r.dropped = map[string]*series{}, nil, nil, 0
	r.mu.Unlock()

	if r.cfg.Disabled {
		return nil
	}
	if r.cfgErr != nil {
		return fmt.Errorf("flush metrics: %w", r.cfgErr)
	}
	if dropped > 0 {
		problems = append(problems, fmt.Errorf("and %d more invalid metrics", dropped))
	}
	invalid := errors.Join(problems...)
	if invalid != nil {
		invalid = fmt.Errorf("metrics left out: %w", invalid)
	}

	ts := r.cfg.Now().UnixMilli()
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	for _, key := range order {
		s := sets[key]
		for _, line := range s.lines() {
			r.buf = appendLine(r.buf[:0], r.cfg.Namespace, ts, s, line)
			// One Write per line: Lambda makes each line a log event, and a logger writing to the
			// same stdout between two of our lines cannot split one.
			if _, err := r.w.Write(r.buf); err != nil {
				return errors.Join(fmt.Errorf("write metrics for %s: %w", describe(s.dims), err), invalid)
			}
		}
	}
	return invalid
}

func describe(dims []Dim) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = d.Name + "=" + d.Value
	}
	return strings.Join(parts, ",")
}
