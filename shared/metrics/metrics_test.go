package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testTime = time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

func testConfig() Config {
	return Config{Namespace: "ReplicaTLS", Service: "replica-tls", Now: func() time.Time { return testTime }}
}

// emfLine is what one EMF line says, decoded for comparison.
type emfLine struct {
	Timestamp int64
	Namespace string
	Dims      []string          // dimension keys, in order
	DimValues map[string]string // their values
	Units     map[string]string // metric name -> unit
	Values    map[string][]float64
}

// decodeLines validates every line of out against the specification and decodes it.
func decodeLines(t *testing.T, out []byte) []emfLine {
	t.Helper()
	var lines []emfLine
	for i, raw := range bytes.SplitAfter(out, []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			t.Fatalf("line %d does not end in a newline: %s", i, raw)
		}
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		if err := validateEMF(raw); err != nil {
			t.Fatalf("line %d is not valid EMF: %v\n%s", i, err, raw)
		}
		var doc struct {
			AWS struct {
				Timestamp         int64
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, &members); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if n := len(doc.AWS.CloudWatchMetrics); n != 1 {
			t.Fatalf("line %d has %d directives, want 1", i, n)
		}
		dir := doc.AWS.CloudWatchMetrics[0]
		if n := len(dir.Dimensions); n != 1 {
			t.Fatalf("line %d has %d dimension sets, want 1", i, n)
		}
		l := emfLine{Timestamp: doc.AWS.Timestamp, Namespace: dir.Namespace, Dims: dir.Dimensions[0],
			DimValues: map[string]string{}, Units: map[string]string{}, Values: map[string][]float64{}}
		for _, k := range l.Dims {
			var v string
			if err := json.Unmarshal(members[k], &v); err != nil {
				t.Fatalf("line %d dimension %s: %v", i, k, err)
			}
			l.DimValues[k] = v
		}
		for _, m := range dir.Metrics {
			l.Units[m.Name] = m.Unit
			var one float64
			if err := json.Unmarshal(members[m.Name], &one); err == nil {
				l.Values[m.Name] = []float64{one}
				continue
			}
			var many []float64
			if err := json.Unmarshal(members[m.Name], &many); err != nil {
				t.Fatalf("line %d metric %s: %v", i, m.Name, err)
			}
			l.Values[m.Name] = many
		}
		lines = append(lines, l)
	}
	return lines
}

// line builds an expected emfLine for the test config: dims after service as name/value pairs,
// metrics as name, unit, values triples.
func line(dims []string, metrics ...any) emfLine {
	l := emfLine{Timestamp: testTime.UnixMilli(), Namespace: "ReplicaTLS",
		Dims: []string{"service"}, DimValues: map[string]string{"service": "replica-tls"},
		Units: map[string]string{}, Values: map[string][]float64{}}
	for i := 0; i < len(dims); i += 2 {
		l.Dims = append(l.Dims, dims[i])
		l.DimValues[dims[i]] = dims[i+1]
	}
	for i := 0; i < len(metrics); i += 3 {
		name := metrics[i].(string)
		l.Units[name] = string(metrics[i+1].(Unit))
		l.Values[name] = metrics[i+2].([]float64)
	}
	return l
}

func TestRecorderFlush(t *testing.T) {
	east, cert := Dim{DimCluster, "east"}, Dim{DimKind, "syncer"}
	manyMetrics := func(n int) (func(r *Recorder), []emfLine) {
		var want []emfLine
		for start := 0; start < n; start += 100 {
			var ms []any
			for i := start; i < min(start+100, n); i++ {
				ms = append(ms, fmt.Sprintf("m%03d", i), Count, []float64{float64(i)})
			}
			want = append(want, line(nil, ms...))
		}
		return func(r *Recorder) {
			for i := range n {
				r.Add(fmt.Sprintf("m%03d", i), Count, float64(i))
			}
		}, want
	}
	split250, want250 := manyMetrics(250)
	seq := func(lo, hi int) []float64 {
		var vs []float64
		for i := lo; i < hi; i++ {
			vs = append(vs, float64(i))
		}
		return vs
	}

	tests := []struct {
		name    string
		record  func(r *Recorder)
		want    []emfLine
		wantErr string // in Flush's error; "" for none
	}{
		{
			name:   "nothing recorded writes nothing",
			record: func(r *Recorder) {},
		},
		{
			name: "counts accumulate",
			record: func(r *Recorder) {
				r.Add(LinksSeen, Count, 2)
				r.Add(LinksSeen, Count, 3)
				r.Add(LinksSecured, Count, 1)
			},
			want: []emfLine{line(nil, LinksSeen, Count, []float64{5}, LinksSecured, Count, []float64{1})},
		},
		{
			name: "Min keeps the smallest per dimension set",
			record: func(r *Recorder) {
				r.Min(CertificateDaysToExpiry, None, 40, east, cert)
				r.Min(CertificateDaysToExpiry, None, 12.5, east, cert)
				r.Min(CertificateDaysToExpiry, None, 30, east, cert)
				r.Min(CertificateDaysToExpiry, None, 90, Dim{DimCluster, "west"}, cert)
			},
			want: []emfLine{
				line([]string{"cluster", "east", "kind", "syncer"}, CertificateDaysToExpiry, None, []float64{12.5}),
				line([]string{"cluster", "west", "kind", "syncer"}, CertificateDaysToExpiry, None, []float64{90}),
			},
		},
		{
			name: "Min keeps a negative value (an expired certificate)",
			record: func(r *Recorder) {
				r.Min(CertificateDaysToExpiry, None, 3, east)
				r.Min(CertificateDaysToExpiry, None, -2, east)
			},
			want: []emfLine{line([]string{"cluster", "east"}, CertificateDaysToExpiry, None, []float64{-2})},
		},
		{
			name: "Set keeps the last value",
			record: func(r *Recorder) {
				r.Set(StoppedSyncs, Count, 4)
				r.Set(StoppedSyncs, Count, 1)
			},
			want: []emfLine{line(nil, StoppedSyncs, Count, []float64{1})},
		},
		{
			name: "dimension order does not make a new set",
			record: func(r *Recorder) {
				r.Add(DriftDetected, Count, 1, cert, east)
				r.Add(DriftDetected, Count, 1, east, cert)
			},
			want: []emfLine{line([]string{"cluster", "east", "kind", "syncer"}, DriftDetected, Count, []float64{2})},
		},
		{
			name: "one line per dimension set, in the order first recorded",
			record: func(r *Recorder) {
				r.Add(ClusterAPICalls, Count, 1, east)
				r.Add(ColdStart, Count, 1)
				r.Add(ClusterAPIWrites, Count, 1, east)
			},
			want: []emfLine{
				line([]string{"cluster", "east"}, ClusterAPICalls, Count, []float64{1}, ClusterAPIWrites, Count, []float64{1}),
				line(nil, ColdStart, Count, []float64{1}),
			},
		},
		{
			name: "Observe keeps every value as an array",
			record: func(r *Recorder) {
				for _, v := range []float64{12, 7.25, 300} {
					r.Observe(ClusterAPILatencyMs, Milliseconds, v, east)
				}
				r.Observe(LeaseWaitMs, Milliseconds, 50)
			},
			want: []emfLine{
				line([]string{"cluster", "east"}, ClusterAPILatencyMs, Milliseconds, []float64{12, 7.25, 300}),
				line(nil, LeaseWaitMs, Milliseconds, []float64{50}),
			},
		},
		{
			name:   "250 metrics split into lines of at most 100",
			record: split250,
			want:   want250,
		},
		{
			name: "more than 100 values of one metric continue on the next line",
			record: func(r *Recorder) {
				for i := range 230 {
					r.Observe(ClusterAPILatencyMs, Milliseconds, float64(i))
				}
				r.Add(ClusterAPICalls, Count, 230)
			},
			want: []emfLine{
				line(nil, ClusterAPILatencyMs, Milliseconds, seq(0, 100), ClusterAPICalls, Count, []float64{230}),
				line(nil, ClusterAPILatencyMs, Milliseconds, seq(100, 200)),
				line(nil, ClusterAPILatencyMs, Milliseconds, seq(200, 230)),
			},
		},
		{
			name: "29 extra dimensions and service are allowed",
			record: func(r *Recorder) {
				var dims []Dim
				for i := range 29 {
					dims = append(dims, Dim{fmt.Sprintf("d%02d", i), "v"})
				}
				r.Add(LinksSeen, Count, 1, dims...)
			},
			want: func() []emfLine {
				var dims []string
				for i := range 29 {
					dims = append(dims, fmt.Sprintf("d%02d", i), "v")
				}
				return []emfLine{line(dims, LinksSeen, Count, []float64{1})}
			}(),
		},
		{
			name: "31 dimensions are refused, the rest written",
			record: func(r *Recorder) {
				var dims []Dim
				for i := range 30 {
					dims = append(dims, Dim{fmt.Sprintf("d%02d", i), "v"})
				}
				r.Add(LinksSeen, Count, 1, dims...)
				r.Add(LinksFailed, Count, 1)
			},
			want:    []emfLine{line(nil, LinksFailed, Count, []float64{1})},
			wantErr: "31 dimensions with service, more than 30",
		},
		{
			name: "invalid recordings are refused with a reason",
			record: func(r *Recorder) {
				r.Add("", Count, 1)
				r.Add("_aws", Count, 1)
				r.Add("Bad\nName", Count, 1)
				r.Add(LinksSeen, "Links", 1)
				r.Add(LinksSeen, Count, math.NaN())
				r.Add(LinksSeen, Count, math.Inf(1))
				r.Add(LinksSeen, Count, 1, Dim{"service", "other"})
				r.Add(LinksSeen, Count, 1, Dim{":cluster", "x"})
				r.Add(LinksSeen, Count, 1, Dim{DimCluster, "x"}, Dim{DimCluster, "y"})
				r.Add(LinksSeen, Count, 1, Dim{DimCluster, " "})
				r.Add("cluster", Count, 1, Dim{DimCluster, "x"})
				r.Add(LinksSecured, Count, 1)
			},
			want: []emfLine{line(nil, LinksSecured, Count, []float64{1})},
			wantErr: `metric "": empty` + "\n" +
				`metric "_aws": "_aws" is the embedded metric format's metadata member` + "\n" +
				`metric "Bad\nName": byte 0xa at 3 is not printable ASCII` + "\n" +
				`metric "LinksSeen": unit "Links" is not a CloudWatch unit` + "\n" +
				`metric "LinksSeen": value NaN is not a finite number` + "\n" +
				`metric "LinksSeen": value +Inf is not a finite number` + "\n" +
				`metric "LinksSeen": dimension "service" is set from the Config` + "\n" +
				`metric "LinksSeen": dimension name ":cluster": starts with a colon` + "\n" +
				`metric "LinksSeen": dimension "cluster" given twice` + "\n" +
				`metric "LinksSeen": dimension cluster=" ": only spaces` + "\n" +
				`and 1 more invalid metrics`,
		},
		{
			name: "a metric recorded two ways keeps the first",
			record: func(r *Recorder) {
				r.Add(LinksSeen, Count, 2)
				r.Min(LinksSeen, Count, 1)
				r.Add(LinksSeen, Milliseconds, 5)
			},
			want:    []emfLine{line(nil, LinksSeen, Count, []float64{2})},
			wantErr: `metric "LinksSeen": recorded with Add, now with Min` + "\n" + `metric "LinksSeen": recorded in Count, now in Milliseconds`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := New(&out, testConfig())
			tt.record(r)
			err := r.Flush(context.Background())
			checkErr(t, err, tt.wantErr)
			got := decodeLines(t, out.Bytes())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
		})
	}
}

// checkErr fails t unless err is nil and want is "", or err mentions want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one mentioning %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, want)
	}
}

func TestFlushStartsAfresh(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, testConfig())
	r.Add(LinksSeen, Count, 4)
	r.Add("", Count, 1)
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("first Flush: no error for the invalid metric")
	}
	out.Reset()
	r.Add(LinksSeen, Count, 1)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("second Flush reported the first one's problem again: %v", err)
	}
	want := []emfLine{line(nil, LinksSeen, Count, []float64{1})}
	if diff := cmp.Diff(want, decodeLines(t, out.Bytes())); diff != "" {
		t.Errorf("second flush (-want +got):\n%s", diff)
	}
	out.Reset()
	if err := r.Flush(context.Background()); err != nil || out.Len() != 0 {
		t.Errorf("third Flush with nothing recorded: err %v, wrote %q", err, out.String())
	}
}

func TestTimestampIsFlushTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	cfg := testConfig()
	cfg.Now = func() time.Time { return now }
	var out bytes.Buffer
	r := New(&out, cfg)
	r.Add(LinksSeen, Count, 1)
	now = now.Add(1500 * time.Millisecond)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := decodeLines(t, out.Bytes())[0].Timestamp; got != 1_700_000_001_500 {
		t.Errorf("Timestamp %d, want 1700000001500 (the flush time in ms)", got)
	}
}

func TestDisabledWritesNothing(t *testing.T) {
	var out bytes.Buffer
	cfg := testConfig()
	cfg.Disabled = true
	cfg.Namespace = "" // not checked when disabled
	r := New(&out, cfg)
	r.Add(LinksSeen, Count, 1)
	r.Add("", "bad", math.NaN())
	if err := r.Flush(context.Background()); err != nil {
		t.Errorf("Flush: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("disabled recorder wrote %q", out.String())
	}
}

func TestInvalidConfigWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty namespace", Config{Service: "s"}, `namespace "": empty`},
		{"AWS namespace", Config{Namespace: "AWS/Lambda", Service: "s"}, "reserved"},
		{"empty service", Config{Namespace: "N"}, `service "": empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := New(&out, tt.cfg)
			r.Add(LinksSeen, Count, 1)
			checkErr(t, r.Flush(context.Background()), tt.want)
			if out.Len() != 0 {
				t.Errorf("wrote %q with an invalid config", out.String())
			}
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestFlushWriteErrorAndCancelledContext(t *testing.T) {
	boom := errors.New("stdout closed")
	r := New(failingWriter{boom}, testConfig())
	r.Add(LinksSeen, Count, 1, Dim{DimCluster, "east"})
	err := r.Flush(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "service=replica-tls,cluster=east") {
		t.Errorf("Flush error %v: want it to wrap %v and name the dimension set", err, boom)
	}

	var out bytes.Buffer
	r = New(&out, testConfig())
	r.Add(LinksSeen, Count, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Flush(ctx); err != nil {
		t.Errorf("Flush with a cancelled context: %v", err)
	}
	want := []emfLine{line(nil, LinksSeen, Count, []float64{1})}
	if diff := cmp.Diff(want, decodeLines(t, out.Bytes())); diff != "" {
		t.Errorf("a timed-out invocation's metrics (-want +got):\n%s", diff)
	}
}

func TestStringsAreEscaped(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, testConfig())
	r.Add(`say "hi"\now`, Count, 1, Dim{DimCluster, `a"b\c`})
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []emfLine{line([]string{"cluster", `a"b\c`}, `say "hi"\now`, Count, []float64{1})}
	if diff := cmp.Diff(want, decodeLines(t, out.Bytes())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNumbers(t *testing.T) {
	for _, v := range []float64{0, -0.5, 1e-7, 123456789.125, 3e21, -4e22, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			var out bytes.Buffer
			r := New(&out, testConfig())
			r.Set(LinksSeen, None, v)
			if err := r.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := decodeLines(t, out.Bytes())[0].Values[LinksSeen][0]; got != v {
				t.Errorf("value came back as %v, want %v\n%s", got, v, out.String())
			}
		})
	}
}

// lockedBuffer lets Flush from several goroutines write where the test can read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestConcurrentUse records and flushes from many goroutines at once (run with -race): no
// recording is lost or counted twice, and every line is valid EMF.
func TestConcurrentUse(t *testing.T) {
	const workers, perWorker = 8, 500
	var out lockedBuffer
	r := New(&out, testConfig())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cluster := Dim{DimCluster, fmt.Sprintf("c%d", w%3)}
			for i := range perWorker {
				r.Add(ClusterAPICalls, Count, 1, cluster)
				r.Min(CertificateDaysToExpiry, None, float64(1000-w*perWorker-i), cluster)
				r.Observe(ClusterAPILatencyMs, Milliseconds, float64(i), cluster)
				if i%100 == 0 {
					if err := r.Flush(context.Background()); err != nil {
						t.Errorf("Flush: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	var calls float64
	var latencies int
	lowest := math.Inf(1)
	for _, l := range decodeLines(t, out.b.Bytes()) {
		for _, v := range l.Values[ClusterAPICalls] {
			calls += v
		}
		latencies += len(l.Values[ClusterAPILatencyMs])
		for _, v := range l.Values[CertificateDaysToExpiry] {
			lowest = min(lowest, v)
		}
	}
	if calls != workers*perWorker {
		t.Errorf("ClusterAPICalls summed to %v over all lines, want %d", calls, workers*perWorker)
	}
	if latencies != workers*perWorker {
		t.Errorf("%d latency values written, want %d", latencies, workers*perWorker)
	}
	if want := float64(1000 - (workers-1)*perWorker - (perWorker - 1)); lowest != want {
		t.Errorf("lowest CertificateDaysToExpiry %v, want %v", lowest, want)
	}
}

// BenchmarkFlush is one invocation's worth: 20 metrics recorded over two dimension sets, then flushed.
func BenchmarkFlush(b *testing.B) {
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("Metric%02d", i)
	}
	east := Dim{DimCluster, "east"}
	r := New(io.Discard, testConfig())
	b.ReportAllocs()
	for b.Loop() {
		for i, n := range names {
			if i%2 == 0 {
				r.Add(n, Count, 1)
			} else {
				r.Add(n, Count, 1, east)
			}
		}
		if err := r.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
