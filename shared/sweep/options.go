package sweep

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables the sweep function reads besides lambdaapp's (template.yaml sets them).
const (
	EnvConcurrency     = "SWEEP_CONCURRENCY"
	EnvStopMargin      = "SWEEP_STOP_MARGIN"
	EnvClusterRate     = "CLUSTER_RATE_LIMIT"
	EnvClusterInFlight = "CLUSTER_MAX_IN_FLIGHT"
	EnvCallTimeout     = "CLUSTER_CALL_TIMEOUT"
	EnvThresholds      = "EXPIRY_THRESHOLDS_DAYS"
	EnvNoticeTable     = "EXPIRY_NOTICE_TABLE"
)

// Options tune a sweep. Zero fields take the defaults of DefaultOptions.
type Options struct {
	// Concurrency is how many groups of links (links sharing a database) are converged at once.
	Concurrency int
	// ClusterRate is the most API calls per second the sweep makes to one cluster, with bursts of
	// ClusterBurst; ClusterInFlight the most calls to one cluster at the same time.
	ClusterRate     float64
	ClusterBurst    int
	ClusterInFlight int
	// CallTimeout bounds one API call, its retries included (a wait for an action gets four
	// times as long), so that an unreachable cluster or a 503 storm costs one timeout, not the sweep.
	CallTimeout time.Duration
	// BreakerFailures: after this many calls to a cluster failed in a row (network errors, 5xx,
	// timeouts), the rest of the sweep stops calling it.
	BreakerFailures int
	// StopMargin: no new group of links starts when less than this is left before the work
	// deadline (the invocation's deadline less Reserve). What is left is reported. Negative: none.
	StopMargin time.Duration
	// Reserve is kept back from the invocation's deadline for the summary: work in flight is
	// cancelled (and audited) that long before the deadline.
	Reserve time.Duration
	// Thresholds are the days before expiry at which a certificate is reported, each once.
	Thresholds []int
	// PruneAfter is the grace period before a superseded (AWSPREVIOUS) syncer certificate may leave
	// trust lists (reconcile.Config.PruneAfter); 0 never prunes. It applies when the sweep builds its
	// own reconciler: the function's (Config.Reconciler) follows TRUST_GRACE_DAYS, one grace period
	// for the whole project.
	PruneAfter time.Duration
	// Poll is how often a wait for a change polls the cluster (default: the reconciler's).
	Poll time.Duration
}

// DefaultOptions are the defaults template.yaml documents.
func DefaultOptions() Options {
	return Options{
		Concurrency:     16,
		ClusterRate:     50,
		ClusterBurst:    50,
		ClusterInFlight: 8,
		CallTimeout:     30 * time.Second,
		BreakerFailures: 3,
		StopMargin:      60 * time.Second,
		Reserve:         10 * time.Second,
		Thresholds:      []int{30, 14, 7, 1},
	}
}

// withDefaults fills zero fields and sorts the thresholds, largest first.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Concurrency <= 0 {
		o.Concurrency = d.Concurrency
	}
	if o.ClusterRate <= 0 {
		o.ClusterRate = d.ClusterRate
	}
	if o.ClusterBurst <= 0 {
		o.ClusterBurst = max(1, int(o.ClusterRate))
	}
	if o.ClusterInFlight <= 0 {
		o.ClusterInFlight = d.ClusterInFlight
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = d.CallTimeout
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = d.BreakerFailures
	}
	switch {
	case o.StopMargin < 0:
		o.StopMargin = 0
	case o.StopMargin == 0:
		o.StopMargin = d.StopMargin
	}
	if o.Reserve <= 0 {
		o.Reserve = d.Reserve
	}
	if len(o.Thresholds) == 0 {
		o.Thresholds = d.Thresholds
	}
	o.Thresholds = slices.Clone(o.Thresholds)
	slices.Sort(o.Thresholds)
	slices.Reverse(o.Thresholds)
	o.Thresholds = slices.Compact(o.Thresholds)
	o.PruneAfter = max(o.PruneAfter, 0)
	return o
}

// OptionsFromEnv reads Options through getenv (os.Getenv in production). Unset variables keep the
// defaults; a value that cannot be right is an error naming the variable.
func OptionsFromEnv(getenv func(string) string) (Options, error) {
	o := DefaultOptions()
	if v := getenv(EnvConcurrency); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return Options{}, fmt.Errorf("%s=%q: want a whole number from 1 to 256", EnvConcurrency, v)
		}
		o.Concurrency = n
	}
	if v := getenv(EnvClusterRate); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 10000 {
			return Options{}, fmt.Errorf("%s=%q: want calls per second per cluster, above 0", EnvClusterRate, v)
		}
		o.ClusterRate, o.ClusterBurst = r, max(1, int(r))
	}
	if v := getenv(EnvClusterInFlight); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return Options{}, fmt.Errorf("%s=%q: want a whole number from 1 to 256", EnvClusterInFlight, v)
		}
		o.ClusterInFlight = n
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		min  time.Duration
	}{
		{EnvCallTimeout, &o.CallTimeout, time.Second},
		{EnvStopMargin, &o.StopMargin, time.Second},
	} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		dur, err := ParseDuration(v)
		if err != nil || dur < d.min {
			return Options{}, fmt.Errorf("%s=%q: want a duration of at least %s, like 90s, 15m, 36h or 7d", d.name, v, d.min)
		}
		*d.dst = dur
	}
	if v := getenv(EnvThresholds); v != "" {
		ts, err := ParseThresholds(v)
		if err != nil {
			return Options{}, fmt.Errorf("%s=%q: %w", EnvThresholds, v, err)
		}
		o.Thresholds = ts
	}
	return o.withDefaults(), nil
}

// ParseDuration reads a Go duration ("90s", "36h") or a number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("duration %q: want whole days from 0 to 3650", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a Go duration (90s, 15m, 36h) or days (7d)", s)
	}
	return d, nil
}

// ParseThresholds reads comma-separated whole days ("30,14,7,1"), each from 1 to 365.
func ParseThresholds(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 365 {
			return nil, fmt.Errorf("thresholds: want comma-separated whole days from 1 to 365")
		}
		out = append(out, n)
	}
	slices.Sort(out)
	slices.Reverse(out)
	return slices.Compact(out), nil
}
