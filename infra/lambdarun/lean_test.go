package lambdarun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxBootstrapBytes bounds each function's arm64 bootstrap as deployed (stripped): under 10 MB.
// The functions weigh 9.2-9.6 MB since they read AWS configuration with shared/awsenv instead of
// config.LoadDefaultConfig (the SDK floor with the same clients is 8.2 MB); make bench-init
// reports the sizes.
const maxBootstrapBytes = 10_000_000

// testOnlyPackages are import paths (or prefixes ending in "/") that no bootstrap may link: test-only
// packages, and the SDK loader a function does without.
var testOnlyPackages = []string{
	"testing", "testing/",
	"github.com/santhosh-tekuri/jsonschema/",
	"github.com/google/go-cmp/",
	"github.com/stretchr/testify/",
	"github.com/replica-tls/replica-tls/infra/",
	"github.com/replica-tls/replica-tls/shared/audit/schema",
	// The SDK's loader links every credential provider (SSO, STS, IMDS, processes); a function
	// reads Lambda's environment with shared/awsenv instead.
	"github.com/aws/aws-sdk-go-v2/config",
}

func templateFunctions(t testing.TB) []Function {
	t.Helper()
	fns, err := LoadTemplate(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatal("template.yaml declares no functions")
	}
	out := make([]Function, 0, len(fns))
	for _, fn := range fns {
		out = append(out, fn)
	}
	slices.SortFunc(out, func(a, b Function) int { return strings.Compare(a.LogicalID, b.LogicalID) })
	return out
}

func testOnly(pkg string) bool {
	for _, p := range testOnlyPackages {
		if pkg == p || strings.HasSuffix(p, "/") && (strings.HasPrefix(pkg, p) || pkg == strings.TrimSuffix(p, "/")) {
			return true
		}
	}
	return false
}

func TestTestOnly(t *testing.T) {
	for pkg, want := range map[string]bool{
		"testing": true, "testing/fstest": true, "github.com/google/go-cmp/cmp": true,
		"github.com/santhosh-tekuri/jsonschema/v6": true, "github.com/replica-tls/replica-tls/infra/moto": true,
		"github.com/replica-tls/replica-tls/shared/audit/schema": true,
		"github.com/aws/aws-sdk-go-v2/config":                    true,
		"github.com/replica-tls/replica-tls/shared/audit":        false, "testingx": false, "net/http": false,
	} {
		if got := testOnly(pkg); got != want {
			t.Errorf("testOnly(%q) = %v, want %v", pkg, got, want)
		}
	}
}

// TestBootstrapsAreLean checks what every function of template.yaml links and weighs as deployed:
// no test-only package, and an arm64 stripped bootstrap under maxBootstrapBytes.
func TestBootstrapsAreLean(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function for arm64")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, fn := range templateFunctions(t) {
		t.Run(fn.LogicalID, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", "lambda.norpc", "./"+fn.CodeDir)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", fn.CodeDir, err)
			}
			for _, pkg := range strings.Fields(string(out)) {
				if testOnly(pkg) {
					t.Errorf("%s links %s, which no bootstrap may link", fn.CodeDir, pkg)
				}
			}
			bin, err := buildFor(ctx, repoRoot, fn, t.TempDir(), "arm64")
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: arm64 bootstrap %.2f MB", fn.LogicalID, float64(info.Size())/1e6)
			if info.Size() >= maxBootstrapBytes {
				t.Errorf("%s arm64 bootstrap is %d bytes, want under %d", fn.LogicalID, info.Size(), maxBootstrapBytes)
			}
		})
	}
}
