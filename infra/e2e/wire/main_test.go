package wire

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
	"github.com/replica-tls/replica-tls/infra/testkit"
)

// Set once by TestMain, read-only afterwards.
var (
	motoURL   string
	rie       string             // the emulator binary
	bootstrap string             // the replica-created function, built as for Lambda
	function  lambdarun.Function // its settings from template.yaml
)

// repoRoot is where template.yaml lives, seen from this package's folder.
const repoRoot = "../../.."

func TestMain(m *testing.M) { os.Exit(run(m)) }

// run builds the function and the emulator once for the package, then runs the tests with moto_server.
func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // every test skips: nothing to build
	}
	dir, err := os.MkdirTemp("", "wire-bootstrap-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: build the function for the emulator:", err)
		return 1
	}
	return testkit.MainWithMoto(m, &motoURL)
}

func build(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return err
	}
	fns, err := lambdarun.LoadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	fn, ok := fns["ReplicaCreatedFunction"]
	if !ok {
		return fmt.Errorf("template.yaml has no ReplicaCreatedFunction")
	}
	if rie, err = lambdarun.BuildRIE(ctx, root, "bin"); err != nil {
		return err
	}
	if bootstrap, err = lambdarun.Build(ctx, root, fn, filepath.Join(dir, fn.LogicalID)); err != nil {
		return err
	}
	function = fn
	return nil
}
