// Command invoke runs one function of the SAM template locally, like sam local invoke but without
// Docker: it builds the function's real bootstrap for this machine, runs it under the AWS Lambda
// Runtime Interface Emulator (built from go.mod into bin/) with the environment the template gives
// it, sends one event and prints the answer.
//
//	go run ./infra/cmd/invoke -fn ReplicaCreatedFunction -event events/replica-created.json \
//	    -env AWS_ENDPOINT_URL=http://127.0.0.1:5000
//
// The function's log and the emulator's warnings go to stderr, the answer (pretty JSON) to stdout.
//
// The function's environment is, from weakest to strongest: the template's Environment.Variables
// (Globals merged), then the variables below when they are set in this command's environment, then
// every -env KEY=VALUE. Taken from this command's environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, and every variable the template declares
// for the function. Nothing else of this command's environment reaches the function but PATH and HOME.
// Template values that cannot be computed locally (!GetAtt, resources, parameters without Default)
// are reported; give them local values with -env.
//
// Exit status: 0 the function succeeded, 1 the function returned an error (or panicked, crashed,
// timed out), 2 bad usage or input, 3 the build or the emulator failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
)

const (
	exitOK            = 0
	exitFunctionError = 1
	exitUsage         = 2
	exitFailure       = 3
)

// slack is how long past the function's timeout to wait for the emulator's answer.
const slack = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// passThrough names the variables taken from this command's environment besides the template's own.
func passThrough() []string {
	return []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"}
}

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }

func (e *envFlags) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || k == "" || strings.ContainsRune(k, 0) {
		return errors.New("want KEY=VALUE")
	}
	*e = append(*e, v)
	return nil
}

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fnID := fs.String("fn", "", "logical id of the function in the template (required)")
	eventFile := fs.String("event", "", "file with the JSON event, - for stdin (default {})")
	templateFile := fs.String("template", "template.yaml", "SAM template")
	timeout := fs.Duration("timeout", 0, "function timeout, rounded up to whole seconds (default: the template's)")
	buildDir := fs.String("build-dir", "", "where to build the bootstrap (default <repo>/.local/lambdarun)")
	verbose := fs.Bool("v", false, "show the emulator's info log, not only its warnings")
	var overrides envFlags
	fs.Var(&overrides, "env", "KEY=VALUE for the function's environment (repeatable; wins over everything)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: invoke -fn LogicalId [-event file] [-template template.yaml] [-env KEY=VALUE]... [-timeout d]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *fnID == "" || fs.NArg() > 0 || *timeout < 0 {
		fs.Usage()
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "invoke: "+format+"\n", a...)
		return code
	}

	event, err := readEvent(*eventFile, stdin)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fns, err := lambdarun.LoadTemplate(*templateFile)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fn, ok := fns[*fnID]
	if !ok {
		return fail(exitUsage, "no function %q in %s; it has: %s", *fnID, *templateFile, strings.Join(sortedKeys(fns), ", "))
	}
	root, err := repoRoot(*templateFile)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if *timeout > 0 {
		fn.Timeout = *timeout
	}

	env, sources := functionEnv(fn, environ, overrides)
	if len(sources) > 0 {
		// Names only: the values may be credentials.
		fmt.Fprintf(stderr, "invoke: environment overrides: %s\n", strings.Join(sources, ", "))
	}
	for _, prop := range fn.Unresolved {
		name, isVar := strings.CutPrefix(prop, "Environment.Variables.")
		if isVar && !strings.HasPrefix(env[name], lambdarun.UnresolvedPrefix) {
			continue
		}
		hint := "the default is used"
		if isVar {
			hint = fmt.Sprintf("the function sees %q; set it with -env %s=...", env[name], name)
		}
		fmt.Fprintf(stderr, "invoke: warning: %s: %s has no local value: %s\n", fn.LogicalID, prop, hint)
	}
	limit := fn.Timeout
	if v, ok := env["AWS_LAMBDA_FUNCTION_TIMEOUT"]; ok {
		secs, err := strconv.Atoi(v)
		if err != nil || secs <= 0 {
			return fail(exitUsage, "AWS_LAMBDA_FUNCTION_TIMEOUT=%q: want a positive whole number of seconds", v)
		}
		limit = time.Duration(secs) * time.Second
	}

	fmt.Fprintf(stderr, "invoke: building %s from %s\n", fn.LogicalID, fn.CodeDir)
	rie, err := lambdarun.BuildRIE(ctx, root, "bin")
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	if *buildDir == "" {
		*buildDir = filepath.Join(root, ".local", "lambdarun")
	}
	bootstrap, err := lambdarun.Build(ctx, root, fn, filepath.Join(*buildDir, fn.LogicalID))
	if err != nil {
		return fail(exitFailure, "%v", err)
	}

	level := "warn"
	if *verbose {
		level = "info"
	}
	runner, err := lambdarun.Start(ctx, rie, bootstrap, env, lambdarun.Options{
		Stdout: stderr, Stderr: stderr, LogLevel: level,
		FunctionName: fn.LogicalID, Timeout: fn.Timeout, MemoryMB: fn.MemoryMB,
	})
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	invokeCtx, cancel := context.WithTimeout(ctx, limit+slack)
	res, err := runner.Invoke(invokeCtx, event)
	cancel()
	if stopErr := runner.Stop(); stopErr != nil {
		fmt.Fprintf(stderr, "invoke: %v\n", stopErr)
	}
	if ctx.Err() != nil {
		return fail(exitFailure, "interrupted; %s stopped", fn.LogicalID)
	}
	if err != nil {
		return fail(exitFailure, "%s: %v", fn.LogicalID, err)
	}

	var pretty bytes.Buffer
	if json.Indent(&pretty, res.Payload, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(res.Payload)
	}
	pretty.WriteByte('\n')
	if _, err := stdout.Write(pretty.Bytes()); err != nil {
		return fail(exitFailure, "write the answer: %v", err)
	}
	if res.FunctionError != nil {
		return fail(exitFunctionError, "%s failed after %v: %s: %s", fn.LogicalID, res.Duration.Round(time.Millisecond),
			res.FunctionError.Type, res.FunctionError.Message)
	}
	fmt.Fprintf(stderr, "invoke: %s answered in %v\n", fn.LogicalID, res.Duration.Round(time.Millisecond))
	return exitOK
}

// functionEnv layers the template's variables, the pass-through variables of environ and the -env
// overrides, and names each variable that did not come from the template.
func functionEnv(fn lambdarun.Function, environ []string, overrides []string) (map[string]string, []string) {
	caller := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			caller[k] = v
		}
	}
	env := make(map[string]string, len(fn.Env)+len(overrides))
	for k, v := range fn.Env {
		env[k] = v
	}
	from := map[string]string{}
	names := append(passThrough(), sortedKeys(fn.Env)...)
	for _, k := range names {
		if v, ok := caller[k]; ok {
			env[k] = v
			from[k] = "environment"
		}
	}
	for _, kv := range overrides {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
		from[k] = "-env"
	}
	sources := make([]string, 0, len(from))
	for _, k := range sortedKeys(from) {
		sources = append(sources, k+" ("+from[k]+")")
	}
	return env, sources
}

func readEvent(file string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	switch file {
	case "":
		return []byte("{}"), nil
	case "-":
		data, err = io.ReadAll(stdin)
		file = "stdin"
	default:
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("event %s is not valid JSON", file)
	}
	return data, nil
}

// repoRoot is the folder of the go.mod at or above the template: where the function packages are.
func repoRoot(templateFile string) (string, error) {
	dir, err := filepath.Abs(filepath.Dir(templateFile))
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod in %s or above: the template must be inside the Go module", dir)
		}
		d = parent
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
