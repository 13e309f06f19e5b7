//go:build linux

package lambdarun

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// initRounds is how many cold starts BenchmarkInit measures per bootstrap; it reports the median.
const initRounds = 9

type initTarget struct {
	fn     Function
	bin    string // host build, run under the emulator
	arm64  int64  // size of the arm64 build as deployed
	env    map[string]string
	inits  []time.Duration
	isFunc bool
}

// BenchmarkInit builds a bare aws-lambda-go bootstrap, a minimal one that loads the AWS configuration
// and creates the functions' AWS clients (the floor), and every function of template.yaml, then
// cold-starts each initRounds times under the emulator, interleaved so that load on the machine
// hits all alike. It reports each bootstrap's median INIT, its ratio to the floor and its sizes.
func BenchmarkInit(b *testing.B) {
	ctx := context.Background()
	endpoint := closedEndpoint(b)
	common := map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_MAX_ATTEMPTS": "1",
		"AWS_ACCESS_KEY_ID": "AKIDINITBENCH", "AWS_SECRET_ACCESS_KEY": "init-bench", "AWS_REGION": "us-east-1",
	}
	targets := []*initTarget{
		{fn: Function{LogicalID: "bare", CodeDir: "infra/lambdarun/testdata/bare"}},
		{fn: Function{LogicalID: "minimal", CodeDir: "infra/lambdarun/testdata/minimal"}},
	}
	for _, fn := range templateFunctions(b) {
		targets = append(targets, &initTarget{fn: fn, isFunc: true})
	}
	tmp := b.TempDir()
	for _, tg := range targets {
		var err error
		if tg.bin, err = Build(ctx, repoRoot, tg.fn, filepath.Join(tmp, "host", tg.fn.LogicalID)); err != nil {
			b.Fatal(err)
		}
		arm, err := buildFor(ctx, repoRoot, tg.fn, filepath.Join(tmp, "arm64", tg.fn.LogicalID), "arm64")
		if err != nil {
			b.Fatal(err)
		}
		if tg.arm64, err = fileSize(arm); err != nil {
			b.Fatal(err)
		}
		tg.env = map[string]string{}
		for k, v := range tg.fn.Env {
			if strings.HasPrefix(v, UnresolvedPrefix) {
				v = "init-bench-" + strings.ToLower(strings.ReplaceAll(k, "_", "-"))
			}
			tg.env[k] = v
		}
		for k, v := range common {
			tg.env[k] = v
		}
		if err := checkNoNetworkInInit(ctx, tg.bin, tg.env); err != nil {
			b.Errorf("%s: %v", tg.fn.LogicalID, err)
		}
	}
	for b.Loop() {
		for _, tg := range targets {
			tg.inits = tg.inits[:0]
		}
		for range initRounds {
			for _, tg := range targets {
				d, err := coldInit(ctx, tg)
				if err != nil {
					b.Fatalf("%s: %v", tg.fn.LogicalID, err)
				}
				tg.inits = append(tg.inits, d)
			}
		}
	}
	b.StopTimer()
	floor := median(targets[1].inits)
	for _, tg := range targets {
		host, err := fileSize(tg.bin)
		if err != nil {
			b.Fatal(err)
		}
		m := median(tg.inits)
		ratio := float64(m) / float64(floor)
		b.ReportMetric(float64(m)/1e6, tg.fn.LogicalID+"-init-ms")
		b.ReportMetric(ratio, tg.fn.LogicalID+"-x-floor")
		b.ReportMetric(float64(tg.arm64)/1e6, tg.fn.LogicalID+"-arm64-MB")
		b.Logf("%-26s INIT median %6.1f ms (%.2fx floor) runs %v; size host %.2f MB, arm64 %.2f MB",
			tg.fn.LogicalID, float64(m)/1e6, ratio, roundAll(tg.inits), float64(host)/1e6, float64(tg.arm64)/1e6)
	}
}

// coldInit starts tg under a fresh emulator, invokes it once (the emulator runs INIT then) and
// returns the INIT duration the emulator reports.
func coldInit(ctx context.Context, tg *initTarget) (time.Duration, error) {
	var log syncBuffer
	r, err := Start(ctx, rieBin, tg.bin, tg.env, Options{Stderr: &log, Stdout: &log, FunctionName: tg.fn.LogicalID})
	if err != nil {
		return 0, err
	}
	// The answer does not matter (an empty event is refused by most handlers), only that INIT ran.
	_, invokeErr := r.Invoke(ctx, []byte(`{}`))
	// The emulator may log the end of INIT after the answer: give it a moment before Stop drops its log.
	for wait := time.Now().Add(2 * time.Second); !strings.Contains(log.String(), "INIT REPORT") && time.Now().Before(wait); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Stop(); err != nil {
		return 0, err
	}
	if invokeErr != nil {
		return 0, invokeErr
	}
	text := log.String()
	if !strings.Contains(text, "INIT RTDONE(status: success)") && !strings.Contains(text, "INIT REPORT") {
		return 0, fmt.Errorf("INIT did not succeed:\n%s", text)
	}
	return InitDuration(text)
}

// checkNoNetworkInInit runs bin as Lambda would, against a runtime API that never hands out an
// event, and fails if it connects to the AWS endpoint before asking for its first event, that is
// during INIT.
func checkNoNetworkInInit(ctx context.Context, bin string, env map[string]string) error {
	aws, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer aws.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := aws.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	asked := make(chan int32, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/runtime/invocation/next") {
			select {
			case asked <- dials.Load():
			default:
			}
			<-r.Context().Done()
			return
		}
		http.Error(w, "unexpected", http.StatusBadRequest)
	})}
	go func() { _ = srv.Serve(api) }()
	defer srv.Close()

	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"AWS_LAMBDA_RUNTIME_API=" + api.Addr().String(), "AWS_ENDPOINT_URL=http://" + aws.Addr().String()}
	for k, v := range env {
		if k != "AWS_ENDPOINT_URL" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case n := <-asked:
		if n > 0 {
			return fmt.Errorf("made %d connections to the AWS endpoint during INIT", n)
		}
		return nil
	case err := <-exited:
		return fmt.Errorf("exited during INIT (%v): %s", err, out.String())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("did not ask for an event within 10 s: %s", out.String())
	}
}

// closedEndpoint is an http URL on a loopback port nothing listens on.
func closedEndpoint(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func fileSize(file string) (int64, error) {
	info, err := os.Stat(file)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Microsecond)
	}
	return out
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
