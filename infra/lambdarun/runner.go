// Package lambdarun runs a Lambda function locally the way sam local invoke does, without Docker: it
// reads the function's settings from template.yaml, builds its real bootstrap, runs it under the AWS
// Lambda Runtime Interface Emulator (aws-lambda-rie) on loopback ports and invokes it with an event.
package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// Stdout receives the function's log (the emulator merges the function's stdout and stderr) and
	// the emulator's START/END/REPORT lines; nil discards them.
	Stdout io.Writer
	// Stderr receives the emulator's own log until Stop begins; nil discards it. Stdout and Stderr
	// may be the same writer: the runner never writes to both at once, nor after Stop returns.
	Stderr io.Writer
	// FunctionName, Timeout (rounded up to whole seconds) and MemoryMB set AWS_LAMBDA_FUNCTION_NAME,
	// AWS_LAMBDA_FUNCTION_TIMEOUT and AWS_LAMBDA_FUNCTION_MEMORY_SIZE unless env sets them. Defaults:
	// "function", DefaultTimeout, DefaultMemoryMB.
	FunctionName string
	Timeout      time.Duration
	MemoryMB     int
	// LogLevel is the emulator's --log-level: panic, fatal, error, warn, info (default), debug or trace.
	LogLevel string
}

// Runner is one running emulator with its function. Invokes are serialized: the emulator crashes on
// concurrent ones. Always call Stop.
type Runner struct {
	url    string
	client *http.Client
	cmd    *exec.Cmd
	out    *outputs
	rie    proc  // the emulator's process, to tell its death before Wait returns
	log    *tail // the last lines of the emulator's own log, for start-up errors

	exited  chan struct{} // closed once the emulator has exited and been reaped
	waitErr error         // the emulator's exit status; read only after exited is closed

	slot   chan struct{} // holds a token while an invoke is in the emulator
	life   context.Context
	cancel context.CancelFunc // ends in-flight requests and refuses new invokes once Stop begins

	mu   sync.Mutex
	seen map[int]proc // function processes seen below the emulator, to end them even if it dies first

	stopOnce sync.Once
	stopErr  error
}

const (
	startTimeout   = 30 * time.Second
	reapTimeout    = 5 * time.Second
	maxAnswerBytes = 16 << 20 // Lambda caps payloads at 6 MB
)

// errPortTaken means another process took a port between our choice and the emulator's bind.
var errPortTaken = errors.New("port taken")

// Start runs rie (the aws-lambda-rie binary) with bootstrap on two free 127.0.0.1 ports and returns
// once it accepts invokes. The emulator gets exactly env plus PATH and HOME from this process and
// the Lambda variables described on Options (plus AWS_REGION/AWS_DEFAULT_REGION, default us-east-1),
// never the rest of this process's environment: it hands all of it to the function. ctx bounds the
// start-up only; the emulator runs until Stop. The working directory is bootstrap's folder, as the
// task root is on Lambda.
func Start(ctx context.Context, rie, bootstrap string, env map[string]string, opts Options) (*Runner, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	rie, err := executable(rie)
	if err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	bootstrap, err = executable(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("start function: %w", err)
	}
	vars, err := runtimeEnv(env, opts, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("start function: %w", err)
	}
	switch opts.LogLevel {
	case "", "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace":
	default:
		return nil, fmt.Errorf("start aws-lambda-rie: unknown log level %q", opts.LogLevel)
	}
	for attempt := 1; ; attempt++ {
		r, err := start(ctx, rie, bootstrap, vars, opts)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			return r, err
		}
	}
}

func start(ctx context.Context, rie, bootstrap string, vars []string, opts Options) (*Runner, error) {
	invokeAddr, runtimeAddr, err := freeAddrs()
	if err != nil {
		return nil, fmt.Errorf("find free ports for aws-lambda-rie: %w", err)
	}
	args := []string{"--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", runtimeAddr}
	if opts.LogLevel != "" {
		args = append(args, "--log-level", opts.LogLevel)
	}
	// Never pass --help or similar: the emulator would run it as the function and hang.
	cmd := exec.Command(rie, append(args, bootstrap)...)
	cmd.Env = vars
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.SysProcAttr = sysProcAttr()
	out := &outputs{}
	log := &tail{max: 4 << 10}
	cmd.Stderr = log
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(log, outputWriter{out, opts.Stderr, true})
	}
	if opts.Stdout != nil {
		cmd.Stdout = outputWriter{out, opts.Stdout, false}
	}
	cmd.WaitDelay = 2 * time.Second // a leftover process holding the output pipes must not block Wait
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}

	rieProc := proc{pid: cmd.Process.Pid}
	if st, ok := readStat(rieProc.pid); ok {
		rieProc = st.proc
	}
	life, cancel := context.WithCancel(context.Background())
	r := &Runner{
		url: "http://" + invokeAddr + "/2015-03-31/functions/function/invocations",
		// Its own transport: no proxy from the environment, no connections shared with other users.
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConns: 1}},
		cmd:    cmd,
		out:    out,
		rie:    rieProc,
		log:    log,
		exited: make(chan struct{}),
		slot:   make(chan struct{}, 1),
		life:   life,
		cancel: cancel,
		seen:   map[int]proc{},
	}
	go func() {
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		conn, err := net.DialTimeout("tcp", invokeAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			if running(r.rie) { // else someone else answered on that port
				return r, nil
			}
		}
		select {
		case <-r.exited:
			_ = r.Stop() // releases the runner's context; nothing else is left
			msg := strings.TrimSpace(log.String())
			if strings.Contains(msg, "address already in use") {
				return nil, fmt.Errorf("start aws-lambda-rie: %w: %s", errPortTaken, msg)
			}
			return nil, fmt.Errorf("aws-lambda-rie exited during start-up (%v): %s", r.waitErr, msg)
		case <-ctx.Done():
			_ = r.Stop()
			return nil, fmt.Errorf("wait for aws-lambda-rie to listen: %w", ctx.Err())
		case <-deadline.C:
			_ = r.Stop()
			return nil, fmt.Errorf("aws-lambda-rie did not listen on %s within %v", invokeAddr, startTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Invoke sends event (JSON) to the function and returns its answer. A function that fails, panics,
// crashes or times out gives a Result with FunctionError set and a nil error; err reports a failure
// of the runner itself. If ctx ends first, Invoke returns at once, but the next Invoke still waits
// until the emulator has answered the abandoned one (at the latest at the function's timeout).
func (r *Runner) Invoke(ctx context.Context, event []byte) (Result, error) {
	if !json.Valid(event) {
		return Result{}, errors.New("invoke: the event is not valid JSON")
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	select {
	case r.slot <- struct{}{}:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke: wait for the previous invoke: %w", ctx.Err())
	case <-r.life.Done():
		return Result{}, errors.New("invoke: the runner is stopped")
	}
	if r.life.Err() != nil {
		<-r.slot
		return Result{}, errors.New("invoke: the runner is stopped")
	}
	type answer struct {
		res Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() { <-r.slot }()
		res, err := r.post(event)
		r.track() // the emulator starts the function at the first invoke and after a crash or timeout
		done <- answer{res, err}
	}()
	select {
	case a := <-done:
		return a.res, a.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("invoke: %w (the function keeps running until it answers or times out)", ctx.Err())
	}
}

func (r *Runner) post(event []byte) (Result, error) {
	if !running(r.rie) {
		return Result{}, fmt.Errorf("invoke: aws-lambda-rie (pid %d) has exited", r.rie.pid)
	}
	req, err := http.NewRequestWithContext(r.life, http.MethodPost, r.url, bytes.NewReader(event))
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	began := time.Now()
	resp, err := r.client.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
		resp.Body.Close()
		if err == nil {
			res, err := parseResponse(resp.StatusCode, body)
			if err != nil {
				return Result{}, fmt.Errorf("invoke: %w", err)
			}
			res.Duration = time.Since(began)
			return res, nil
		}
	}
	if r.life.Err() != nil {
		return Result{}, errors.New("invoke: the runner was stopped during the invoke")
	}
	// A dying emulator closes its sockets as it exits; Wait may return much later, when the
	// function's processes that share its output pipes are gone too.
	for range 20 {
		if !running(r.rie) {
			return Result{}, fmt.Errorf("invoke: aws-lambda-rie (pid %d) exited during the invoke", r.rie.pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return Result{}, fmt.Errorf("invoke: %w", err)
}

// track remembers the function processes currently below the emulator.
func (r *Runner) track() {
	if !running(r.rie) { // its pid may belong to another process by now
		return
	}
	kids := descendants(r.rie.pid)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range kids {
		r.seen[k.pid] = k.proc
	}
}

func (r *Runner) tracked() []proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]proc, 0, len(r.seen))
	for _, p := range r.seen {
		out = append(out, p)
	}
	return out
}

// Stop ends the function's processes, then the emulator's process group, and waits for both. It is
// safe to call more than once and concurrently; it reports processes it could not end.
func (r *Runner) Stop() error {
	r.stopOnce.Do(func() { r.stopErr = r.stop() })
	return r.stopErr
}

func (r *Runner) stop() error {
	r.cancel()
	r.out.stop()
	// The emulator starts the function in a process group of its own, so killing the emulator's group
	// would orphan it. End it first, while the emulator is alive to reap it: an orphan's zombie is
	// left to init, which not every container's pid 1 reaps.
	for round := 0; round < 3; round++ {
		r.track()
		var victims []proc
		for _, p := range r.tracked() {
			if running(p) {
				victims = append(victims, p)
			}
		}
		if len(victims) == 0 {
			break
		}
		for _, p := range victims {
			killGroupAndProcess(p)
		}
		r.awaitReaped(victims)
	}
	if exists(r.rie) { // once reaped, its pid and group id may be reused
		killGroup(r.rie.pid)
	}
	select {
	case <-r.exited:
	case <-time.After(reapTimeout + r.cmd.WaitDelay):
		return fmt.Errorf("stop aws-lambda-rie (pid %d): still running after SIGKILL", r.cmd.Process.Pid)
	}
	r.client.CloseIdleConnections()
	var left []int
	for _, p := range r.tracked() {
		if running(p) {
			killGroupAndProcess(p)
			left = append(left, p.pid)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("stop aws-lambda-rie: function processes %v were still running", left)
	}
	return nil
}

// awaitReaped waits until ps have died and, while the emulator lives, until it has reaped them.
func (r *Runner) awaitReaped(ps []proc) {
	deadline := time.Now().Add(reapTimeout)
	for time.Now().Before(deadline) {
		pending := false
		for _, p := range ps {
			if running(p) {
				pending = true
				continue
			}
			if running(r.rie) { // else nobody is left to reap it
				pending = pending || exists(p)
			}
		}
		if !pending {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddrs picks two distinct free loopback ports by holding both listeners at once.
func freeAddrs() (string, string, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer b.Close()
	return a.Addr().String(), b.Addr().String(), nil
}

// executable checks that file is a runnable regular file and returns its absolute path.
func executable(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

// outputs serializes the emulator's two streams and silences its own log once Stop begins: its lines
// about the function being killed would look like a failure.
type outputs struct {
	mu       sync.Mutex
	stopping bool
}

func (o *outputs) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopping = true
}

type outputWriter struct {
	o       *outputs
	w       io.Writer
	emulLog bool
}

func (w outputWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	if w.emulLog && w.o.stopping {
		return len(p), nil
	}
	return w.w.Write(p)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
