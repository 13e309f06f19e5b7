package lambdarun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Built once for the whole package by TestMain.
var (
	repoRoot string // the module root
	rieBin   string // aws-lambda-rie, cached in <repo>/bin
	echoBin  string // testdata/echofn's bootstrap
)

func TestMain(m *testing.M) {
	code, err := testMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lambdarun tests:", err)
		code = 1
	}
	os.Exit(code)
}

func testMain(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold RIE build takes ~70 s
	defer cancel()
	var err error
	if repoRoot, err = findRepoRoot(); err != nil {
		return 0, err
	}
	if rieBin, err = BuildRIE(ctx, repoRoot, "bin"); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "lambdarun-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	echo := Function{LogicalID: "EchoFunction", CodeDir: "infra/lambdarun/testdata/echofn"}
	if echoBin, err = Build(ctx, repoRoot, echo, filepath.Join(tmp, "echo")); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's folder")
		}
		dir = parent
	}
}
