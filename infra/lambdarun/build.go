package lambdarun

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
)

// RIEModule is the Go module of the AWS Lambda Runtime Interface Emulator; go.mod pins its version.
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator"

const riePackage = RIEModule + "/cmd/aws-lambda-rie"

// Build compiles fn's main package the way the project's Makefile does for Lambda
// (CGO_ENABLED=0 GOOS=linux -tags lambda.norpc -trimpath -ldflags='-s -w'), but for the host's
// architecture so that it runs here, and returns the absolute path of outDir/bootstrap.
func Build(ctx context.Context, repoRoot string, fn Function, outDir string) (string, error) {
	return buildFor(ctx, repoRoot, fn, outDir, runtime.GOARCH)
}

// buildFor is Build for goarch: arm64 gives the binary Lambda runs, to measure its size.
func buildFor(ctx context.Context, repoRoot string, fn Function, outDir, goarch string) (string, error) {
	clean := path.Clean(filepath.ToSlash(fn.CodeDir))
	if fn.CodeDir == "" || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("build %s: code dir %q must name a folder inside the repository", fn.LogicalID, fn.CodeDir)
	}
	if info, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(clean))); err != nil || !info.IsDir() {
		return "", fmt.Errorf("build %s: no folder %s in %s (set Metadata.LocalCodeDir in the template)", fn.LogicalID, clean, repoRoot)
	}
	out, err := goBuild(ctx, repoRoot, outDir, "bootstrap", []string{
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch,
	}, "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "./"+clean)
	if err != nil {
		return "", fmt.Errorf("build %s from %s: %w", fn.LogicalID, clean, err)
	}
	return out, nil
}

// BuildRIE returns binDir/aws-lambda-rie, building it from the version go.mod pins when it is missing
// or was built from another version. A relative binDir is taken relative to repoRoot.
func BuildRIE(ctx context.Context, repoRoot, binDir string) (string, error) {
	if !filepath.IsAbs(binDir) {
		binDir = filepath.Join(repoRoot, binDir)
	}
	want, err := pinnedVersion(ctx, repoRoot)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "aws-lambda-rie")
	if info, err := buildinfo.ReadFile(bin); err == nil && want != "" && info.Main.Path == RIEModule && info.Main.Version == want {
		return bin, nil
	}
	// Missing, unreadable or another version: build it. CGO off gives a static binary.
	out, err := goBuild(ctx, repoRoot, binDir, "aws-lambda-rie", []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH}, riePackage)
	if err != nil {
		return "", fmt.Errorf("build aws-lambda-rie: %w", err)
	}
	return out, nil
}

// pinnedVersion is the RIE version go.mod selects, or "" when a replace directive points elsewhere
// (then the binary is always rebuilt).
func pinnedVersion(ctx context.Context, repoRoot string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}} {{if .Replace}}replaced{{end}}", RIEModule)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find the aws-lambda-rie version in %s/go.mod: %w: %s", repoRoot, err, strings.TrimSpace(stderr.String()))
	}
	fields := strings.Fields(string(out))
	if len(fields) != 1 {
		return "", nil
	}
	return fields[0], nil
}

// goBuild builds pkg into outDir/name. It links into a temporary folder first and renames, so a
// concurrent build or a running copy of the binary never sees a half-written file.
func goBuild(ctx context.Context, repoRoot, outDir, name string, env []string, args ...string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("create output folder: %w", err)
	}
	tmp, err := os.MkdirTemp(outDir, ".build-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("create temporary build folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", filepath.Join(tmp, name)}, args...)...)
	cmd.Dir = repoRoot
	// The go command needs the caller's GOPATH, GOCACHE, GOFLAGS, proxy settings...; later entries win.
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, strings.TrimSpace(string(out)))
	}
	final, err := filepath.Abs(filepath.Join(outDir, name))
	if err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, name), final); err != nil {
		return "", fmt.Errorf("install %s: %w", name, err)
	}
	return final, nil
}
