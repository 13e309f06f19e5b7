//go:build linux

package lambdarun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// echoAnswer is testdata/echofn's response.
type echoAnswer struct {
	Event    json.RawMessage    `json:"event"`
	Greeting string             `json:"greeting"`
	Env      map[string]*string `json:"env"`
	Pid      int                `json:"pid"`
}

func TestRunnerEndToEnd(t *testing.T) {
	t.Setenv("LAMBDARUN_TEST_CANARY", "must-not-leak") // in this process's environment, not in env
	logs := newWatch()
	r := startEcho(t, map[string]string{"ECHO_GREETING": "hello"},
		Options{Stdout: logs, Stderr: testLog{t}, FunctionName: "EchoFunction", Timeout: 10 * time.Second})
	ctx := context.Background()

	var lastPid int
	t.Run("success payload, the function's environment and logs", func(t *testing.T) {
		event := `{"lookup":["ECHO_GREETING","LAMBDARUN_TEST_CANARY","AWS_REGION","AWS_DEFAULT_REGION","AWS_LAMBDA_FUNCTION_NAME","AWS_LAMBDA_FUNCTION_TIMEOUT","HOME"]}`
		res, err := r.Invoke(ctx, []byte(event))
		if err != nil {
			t.Fatal(err)
		}
		if res.FunctionError != nil {
			t.Fatalf("unexpected function error %v", res.FunctionError)
		}
		got := decodeEcho(t, res)
		want := echoAnswer{
			Event:    json.RawMessage(event),
			Greeting: "hello",
			Env: map[string]*string{
				"ECHO_GREETING":               ptr("hello"),
				"LAMBDARUN_TEST_CANARY":       nil,
				"AWS_REGION":                  ptr("us-east-1"),
				"AWS_DEFAULT_REGION":          ptr("us-east-1"),
				"AWS_LAMBDA_FUNCTION_NAME":    ptr("EchoFunction"),
				"AWS_LAMBDA_FUNCTION_TIMEOUT": ptr("10"),
				"HOME":                        ptr(os.Getenv("HOME")),
			},
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(echoAnswer{}, "Pid")); diff != "" {
			t.Errorf("answer (-want +got):\n%s", diff)
		}
		if res.Duration <= 0 {
			t.Errorf("Duration = %v, want > 0", res.Duration)
		}
		if !strings.Contains(logs.String(), "echofn: handled event") {
			t.Errorf("function log not passed to Options.Stdout; got:\n%s", logs.String())
		}
		lastPid = got.Pid
	})

	t.Run("a returned error is a function error, not a runner error", func(t *testing.T) {
		res, err := r.Invoke(ctx, []byte(`{"fail":"cluster prod-east unreachable"}`))
		if err != nil {
			t.Fatal(err)
		}
		want := &FunctionError{Type: "echoError", Message: "cluster prod-east unreachable"}
		if diff := cmp.Diff(want, res.FunctionError); diff != "" {
			t.Errorf("FunctionError (-want +got):\n%s", diff)
		}
		if !json.Valid(res.Payload) || !strings.Contains(string(res.Payload), `"errorType":"echoError"`) {
			t.Errorf("Payload = %s, want the error document", res.Payload)
		}
	})

	t.Run("sequential invokes reuse the warm function", func(t *testing.T) {
		first := decodeEcho(t, invokeOK(t, r, `{"n":1}`))
		second := decodeEcho(t, invokeOK(t, r, `{"n":2}`))
		if first.Pid != second.Pid || first.Pid != lastPid {
			t.Errorf("function pids %d, %d after %d: want one warm process", first.Pid, second.Pid, lastPid)
		}
		if string(second.Event) != `{"n":2}` {
			t.Errorf("second invoke echoed %s", second.Event)
		}
	})

	t.Run("concurrent callers are serialized instead of crashing the emulator", func(t *testing.T) {
		var g errgroup.Group
		for i := range 4 {
			g.Go(func() error {
				event := fmt.Sprintf(`{"n":%d}`, i)
				res, err := r.Invoke(ctx, []byte(event))
				if err != nil {
					return err
				}
				var got echoAnswer
				if err := json.Unmarshal(res.Payload, &got); err != nil {
					return err
				}
				if string(got.Event) != event {
					return fmt.Errorf("invoke %d got the answer to %s", i, got.Event)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a panic is a function error and the next invoke gets a fresh process", func(t *testing.T) {
		res, err := r.Invoke(ctx, []byte(`{"panic":"oops"}`))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&FunctionError{Type: "string", Message: "oops"}, res.FunctionError); diff != "" {
			t.Errorf("FunctionError (-want +got):\n%s", diff)
		}
		next := decodeEcho(t, invokeOK(t, r, `{}`))
		if next.Pid == lastPid {
			t.Errorf("function pid %d survived its panic", next.Pid)
		}
		lastPid = next.Pid
	})

	t.Run("a function that exits without answering is a Runtime.ExitError", func(t *testing.T) {
		res, err := r.Invoke(ctx, []byte(`{"exit":true}`))
		if err != nil {
			t.Fatal(err)
		}
		if res.FunctionError == nil || res.FunctionError.Type != "Runtime.ExitError" || !strings.Contains(res.FunctionError.Message, "exit status 3") {
			t.Errorf("FunctionError = %+v, want Runtime.ExitError with exit status 3", res.FunctionError)
		}
		lastPid = decodeEcho(t, invokeOK(t, r, `{}`)).Pid
	})

	t.Run("an event that is not JSON is refused", func(t *testing.T) {
		if _, err := r.Invoke(ctx, []byte(`{"unclosed":`)); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("err = %v, want a JSON error", err)
		}
	})

	t.Run("Stop ends the emulator and the function", func(t *testing.T) {
		riePid := r.cmd.Process.Pid
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range []int{riePid, lastPid} {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("process %d still exists after Stop (%v)", pid, err)
			}
		}
		if err := r.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if _, err := r.Invoke(ctx, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "stopped") {
			t.Errorf("Invoke after Stop: err = %v, want a stopped runner", err)
		}
	})
}

func TestRunnerTimeout(t *testing.T) {
	r := startEcho(t, map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"}, Options{Stderr: testLog{t}})
	ctx := context.Background()
	res, err := r.Invoke(ctx, []byte(`{"sleep":"1m"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &FunctionError{Type: TimeoutErrorType, Message: "Task timed out after 1.00 seconds"}
	if diff := cmp.Diff(want, res.FunctionError); diff != "" {
		t.Errorf("FunctionError (-want +got):\n%s", diff)
	}
	if !json.Valid(res.Payload) {
		t.Errorf("Payload %q is not JSON", res.Payload)
	}
	// The emulator killed the function; the next invoke starts it again.
	if got := decodeEcho(t, invokeOK(t, r, `{"after":"timeout"}`)); string(got.Event) != `{"after":"timeout"}` {
		t.Errorf("invoke after the timeout echoed %s", got.Event)
	}
}

func TestInvokeAbandonedByItsContextStillSerializes(t *testing.T) {
	logs := newWatch()
	r := startEcho(t, nil, Options{Stdout: logs, Stderr: testLog{t}, Timeout: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r.Invoke(ctx, []byte(`{"sleep":"2s"}`))
		errc <- err
	}()
	logs.await(t, "echofn: sleeping")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned invoke: err = %v, want context.Canceled", err)
	}
	// Sent at once, this would be a second concurrent invoke, which crashes the emulator.
	if got := decodeEcho(t, invokeOK(t, r, `{"n":"next"}`)); string(got.Event) != `{"n":"next"}` {
		t.Errorf("next invoke echoed %s", got.Event)
	}
}

func TestStopEndsTheFunctionAfterTheEmulatorDied(t *testing.T) {
	// Orphans are re-parented to this process instead of a pid 1 that may never reap them, so the
	// test can collect the function's exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })

	logs := newWatch()
	r := startEcho(t, nil, Options{Stdout: logs, Stderr: testLog{t}, Timeout: 2 * time.Minute})
	ctx := context.Background()
	pid := decodeEcho(t, invokeOK(t, r, `{}`)).Pid

	errc := make(chan error, 1)
	go func() {
		_, err := r.Invoke(ctx, []byte(`{"sleep":"10m"}`))
		errc <- err
	}()
	logs.await(t, "echofn: sleeping")
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL); err != nil { // the emulator alone
		t.Fatal(err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("invoke during the crash: err = %v, want the emulator's exit", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatalf("reap function %d: %v", pid, err)
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("function %d ended with %v, want killed by Stop", pid, ws)
	}
}

func TestStartRejectsBadInput(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, rie, bootstrap string
		env                  map[string]string
		opts                 Options
		wantErr              string
	}{
		{"missing bootstrap", rieBin, filepath.Join(t.TempDir(), "nope"), nil, Options{}, "no such file"},
		{"bootstrap not executable", rieBin, notExec, nil, Options{}, "not an executable file"},
		{"missing emulator", filepath.Join(t.TempDir(), "aws-lambda-rie"), echoBin, nil, Options{}, "start aws-lambda-rie"},
		{"unknown log level", rieBin, echoBin, nil, Options{LogLevel: "loud"}, "unknown log level"},
		{"bad timeout variable", rieBin, echoBin, map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "soon"}, Options{}, "positive whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(context.Background(), tt.rie, tt.bootstrap, tt.env, tt.opts)
			if err == nil {
				_ = r.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// BenchmarkColdStart measures Start plus the first invoke, which initialises the function.
func BenchmarkColdStart(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		r, err := Start(ctx, rieBin, echoBin, nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		_, err = r.Invoke(ctx, []byte(`{}`))
		b.StopTimer()
		if stopErr := r.Stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkWarmInvoke measures one invoke of an initialised function.
func BenchmarkWarmInvoke(b *testing.B) {
	ctx := context.Background()
	r, err := Start(ctx, rieBin, echoBin, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := r.Stop(); err != nil {
			b.Error(err)
		}
	}()
	if _, err := r.Invoke(ctx, []byte(`{}`)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Invoke(ctx, []byte(`{"n":1}`)); err != nil {
			b.Fatal(err)
		}
	}
}

func startEcho(t *testing.T, env map[string]string, opts Options) *Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Start(ctx, rieBin, echoBin, env, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

func invokeOK(t *testing.T, r *Runner, event string) Result {
	t.Helper()
	res, err := r.Invoke(context.Background(), []byte(event))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != nil {
		t.Fatalf("invoke %s: %v", event, res.FunctionError)
	}
	return res
}

func decodeEcho(t *testing.T, res Result) echoAnswer {
	t.Helper()
	var a echoAnswer
	if err := json.Unmarshal(res.Payload, &a); err != nil {
		t.Fatalf("decode %s: %v", res.Payload, err)
	}
	return a
}

func ptr(s string) *string { return &s }

// testLog sends the emulator's own log to the test's log, shown on failure or with -v.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// watch collects the function's log and lets a test wait for a line.
type watch struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func newWatch() *watch { return &watch{changed: make(chan struct{}, 1)} }

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *watch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watch) await(t *testing.T, s string) {
	t.Helper()
	limit := time.After(time.Minute) // a generous bound for a hang, not a speed assertion
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.changed:
		case <-limit:
			t.Fatalf("no %q in the function's log:\n%s", s, w.String())
		}
	}
}
