// Package localrun runs replica-tls's real Lambda functions on one machine without Docker: the local
// stack (moto_server, the cluster simulator, the registry, the audit tap) plus each function's real
// bootstrap under the Lambda Runtime Interface Emulator, with the environment template.yaml gives it.
// `make demo`, `make invoke` and the end-to-end tests use it.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/lambdarun"
	"github.com/replica-tls/replica-tls/infra/localstack"
)

// Options configures a Session.
type Options struct {
	RepoRoot string // where go.mod and template.yaml are
	Stack    localstack.Options
	// UseStack runs the functions against a stack the caller started (tests); Stack is then ignored
	// and Close leaves the stack running.
	UseStack *localstack.Stack
	BuildDir string    // where bootstraps go; default <RepoRoot>/.local/lambdarun
	Logs     io.Writer // the functions' logs; nil discards them
	LogLevel string    // the functions' LOG_LEVEL; default info
	// Env overrides the functions' environment (after the template's and the stack's).
	Env map[string]string
}

// Session is a running local world with the functions of template.yaml ready to invoke.
type Session struct {
	Stack *localstack.Stack

	opts    Options
	fns     map[string]lambdarun.Function
	rie     string
	mu      sync.Mutex
	runners map[string]*lambdarun.Runner
	boots   map[string]string    // built bootstrap per function
	started map[string]time.Time // when each emulator was started (after its build)
	// ColdStarts records, per function, the time from starting its emulator to its first answer.
	ColdStarts map[string]time.Duration
}

// Start brings up the local stack and builds the emulator. Functions are built and started on their
// first invoke.
func Start(ctx context.Context, opts Options) (*Session, error) {
	if opts.RepoRoot == "" {
		root, err := FindRepoRoot()
		if err != nil {
			return nil, err
		}
		opts.RepoRoot = root
	}
	if opts.BuildDir == "" {
		opts.BuildDir = filepath.Join(opts.RepoRoot, ".local", "lambdarun")
	}
	if opts.Logs == nil {
		opts.Logs = io.Discard
	}
	fns, err := lambdarun.LoadTemplate(filepath.Join(opts.RepoRoot, "template.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read template.yaml: %w", err)
	}
	rie, err := lambdarun.BuildRIE(ctx, opts.RepoRoot, filepath.Join(opts.RepoRoot, "bin"))
	if err != nil {
		return nil, fmt.Errorf("build the Lambda Runtime Interface Emulator: %w", err)
	}
	st := opts.UseStack
	if st == nil {
		if st, err = localstack.Start(ctx, opts.Stack); err != nil {
			return nil, err
		}
	}
	return &Session{Stack: st, opts: opts, fns: fns, rie: rie, runners: map[string]*lambdarun.Runner{}, boots: map[string]string{}, started: map[string]time.Time{}, ColdStarts: map[string]time.Duration{}}, nil
}

// Functions lists the template's function logical ids.
func (s *Session) Functions() []string {
	var out []string
	for id := range s.fns {
		out = append(out, id)
	}
	return out
}

// Env is the environment a function gets: the template's variables with local values for what only
// exists in AWS, and the local endpoints and credentials.
func (s *Session) Env(fn lambdarun.Function) map[string]string {
	env := maps.Clone(fn.Env)
	for k, v := range env {
		if strings.HasPrefix(v, lambdarun.UnresolvedPrefix) {
			delete(env, k)
		}
	}
	maps.Copy(env, s.Stack.FunctionEnv())
	if s.opts.LogLevel != "" {
		env["LOG_LEVEL"] = s.opts.LogLevel
	}
	maps.Copy(env, s.opts.Env)
	return env
}

func (s *Session) runner(ctx context.Context, logicalID string) (*lambdarun.Runner, bool, error) {
	return s.instance(ctx, logicalID, 0)
}

// instance returns emulator instance i of a function, starting it on first use: the emulator takes
// one invoke at a time, so concurrent invocations each need their own, as Lambda gives each its own
// execution environment.
func (s *Session) instance(ctx context.Context, logicalID string, i int) (*lambdarun.Runner, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := logicalID
	if i > 0 {
		key = fmt.Sprintf("%s#%d", logicalID, i)
	}
	if r, ok := s.runners[key]; ok {
		return r, false, nil
	}
	fn, ok := s.fns[logicalID]
	if !ok {
		return nil, false, fmt.Errorf("template.yaml has no function %q (have %s)", logicalID, strings.Join(s.Functions(), ", "))
	}
	boot, built := s.boots[logicalID]
	if !built {
		var err error
		if boot, err = lambdarun.Build(ctx, s.opts.RepoRoot, fn, filepath.Join(s.opts.BuildDir, logicalID)); err != nil {
			return nil, false, fmt.Errorf("build %s: %w", logicalID, err)
		}
		s.boots[logicalID] = boot // every instance runs the same bootstrap
	}
	s.started[key] = time.Now()
	r, err := lambdarun.Start(ctx, s.rie, boot, s.Env(fn), lambdarun.Options{
		Stdout: s.opts.Logs, FunctionName: logicalID, Timeout: fn.Timeout, MemoryMB: fn.MemoryMB, LogLevel: "warn",
	})
	if err != nil {
		return nil, false, fmt.Errorf("start %s under the emulator: %w", logicalID, err)
	}
	s.runners[key] = r
	return r, true, nil
}

// Kill ends emulator instance i of a function at once, as a crash or a timeout would end an
// execution environment mid-invoke; the next use of that instance starts a fresh one.
func (s *Session) Kill(logicalID string, i int) error {
	key := logicalID
	if i > 0 {
		key = fmt.Sprintf("%s#%d", logicalID, i)
	}
	s.mu.Lock()
	r, ok := s.runners[key]
	delete(s.runners, key)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("kill %s: no such instance", key)
	}
	return r.Stop()
}

// InvokeConcurrently runs a function on several events at the same moment, each in its own
// emulator instance (started on first use and kept for later calls), and collects the audit events
// they published together. Results come back in the order of events.
func (s *Session) InvokeConcurrently(ctx context.Context, logicalID string, events [][]byte) ([]lambdarun.Result, []awslocal.Captured, error) {
	runners := make([]*lambdarun.Runner, len(events))
	for i := range events {
		r, _, err := s.instance(ctx, logicalID, i)
		if err != nil {
			return nil, nil, err
		}
		runners[i] = r
	}
	results := make([]lambdarun.Result, len(events))
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, ev := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = runners[i].Invoke(ctx, ev)
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return results, nil, fmt.Errorf("invoke %s concurrently: %w", logicalID, err)
	}
	evs, err := s.Stack.Tap.Drain(ctx, 2*time.Second)
	if err != nil {
		return results, nil, fmt.Errorf("read audit events: %w", err)
	}
	return results, evs, nil
}

// Invocation is one invoke's outcome.
type Invocation struct {
	Result lambdarun.Result
	Audit  []awslocal.Captured // the audit events published during the invoke
	Cold   bool
}

// Invoke runs a function on an event and collects the audit events it published.
func (s *Session) Invoke(ctx context.Context, logicalID string, event []byte) (Invocation, error) {
	r, cold, err := s.runner(ctx, logicalID)
	if err != nil {
		return Invocation{}, err
	}
	res, err := r.Invoke(ctx, event)
	if err != nil {
		return Invocation{}, fmt.Errorf("invoke %s: %w", logicalID, err)
	}
	if cold {
		s.ColdStarts[logicalID] = time.Since(s.started[logicalID])
	}
	evs, err := s.Stack.Tap.Drain(ctx, 2*time.Second)
	if err != nil {
		return Invocation{Result: res, Cold: cold}, fmt.Errorf("read audit events: %w", err)
	}
	return Invocation{Result: res, Audit: evs, Cold: cold}, nil
}

// Close stops every emulator and the local stack.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	var errs []error
	for id, r := range s.runners {
		if err := r.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", id, err))
		}
	}
	s.runners = map[string]*lambdarun.Runner{}
	s.mu.Unlock()
	if s.opts.UseStack == nil {
		s.Stack.Close(ctx)
	}
	return errors.Join(errs...)
}

// FindRepoRoot walks up from the working directory to the folder holding go.mod and template.yaml.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "template.yaml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this inside the replica-tls repository (no go.mod with template.yaml above the working directory)")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
