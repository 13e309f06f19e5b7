package layering

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const module = "github.com/replica-tls/replica-tls"

// pkg is what `go list -json` says of one package, as far as the rules need.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func (p pkg) rel() string { return strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/") }

// core packages hold the domain: planning, certificates, API shapes, audit, events. They must not
// reach AWS, HTTP or Lambda, so they can be tested as pure logic and reused by any adapter.
var core = []string{
	"shared/audit", "shared/certs", "shared/inventory", "shared/metrics", "shared/reapi",
	"shared/reconcile", "shared/redact", "shared/rotation", "shared/trigger",
}

// impure are import prefixes the core may not use.
var impure = []string{"github.com/aws/", "net/http", "os/exec"}

// testSupport packages exist for tests; product code may not link them.
var testSupport = []string{"shared/certs/certstest", "shared/audit/schema"}

func hasPrefix(path string, prefixes ...string) bool {
	for _, p := range prefixes {
		if path == strings.TrimSuffix(p, "/") || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

func list(t *testing.T) []pkg {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list ./...: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list ./...: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

// check returns every rule pkgs break, one line each.
func check(pkgs []pkg) []string {
	var violations []string
	bad := func(format string, p pkg, imp string) {
		violations = append(violations, strings.NewReplacer("{pkg}", p.rel(), "{imp}", strings.TrimPrefix(imp, module+"/")).Replace(format))
	}
	for _, p := range pkgs {
		product := hasPrefix(p.rel(), "shared/", "functions/")
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if hasPrefix(imp, module+"/functions/") {
				bad("{pkg} imports {imp}: a function is a main package nothing else may import", p, imp)
			}
		}
		for _, imp := range p.Imports { // what the package's own (non-test) code links
			if product && hasPrefix(imp, module+"/infra/") {
				bad("{pkg} imports {imp}: product code never imports infra/", p, imp)
			}
			if product && imp == module+"/shared/lambdaapp" && !hasPrefix(p.rel(), "functions/") {
				bad("{pkg} imports {imp}: only functions use the composition root", p, imp)
			}
			if product && !hasPrefix(p.rel(), testSupport...) && slices.ContainsFunc(testSupport, func(s string) bool { return imp == module+"/"+s }) {
				bad("{pkg} imports {imp}: test support in product code", p, imp)
			}
			if hasPrefix(p.rel(), core...) && !hasPrefix(p.rel(), testSupport...) && hasPrefix(imp, impure...) {
				bad("{pkg} imports {imp}: the core stays free of AWS, HTTP and processes", p, imp)
			}
		}
	}
	return violations
}

// TestLayers runs the rules over every package of the module as `go list` sees it.
func TestLayers(t *testing.T) {
	for _, v := range check(list(t)) {
		t.Error(v)
	}
}

// TestRulesCanFail keeps the checker honest: each rule reports a package that breaks it.
func TestRulesCanFail(t *testing.T) {
	tests := []struct {
		name string
		p    pkg
	}{
		{"infra from product", pkg{ImportPath: module + "/shared/reconcile", Imports: []string{module + "/infra/moto"}}},
		{"function from anywhere", pkg{ImportPath: module + "/infra/localrun", TestImports: []string{module + "/functions/sweep"}}},
		{"composition root from shared", pkg{ImportPath: module + "/shared/sweep", Imports: []string{module + "/shared/lambdaapp"}}},
		{"test support in product", pkg{ImportPath: module + "/shared/rotation", Imports: []string{module + "/shared/certs/certstest"}}},
		{"AWS in the core", pkg{ImportPath: module + "/shared/reconcile", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := len(check([]pkg{tc.p})); n != 1 {
				t.Errorf("%d violations, want 1", n)
			}
		})
	}
}
