package lambdarun

import (
	"context"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildRejectsBadCodeDir(t *testing.T) {
	tests := []struct {
		name, codeDir, wantErr string
	}{
		{"empty", "", "must name a folder inside"},
		{"outside the repository", "../elsewhere", "must name a folder inside"},
		{"absolute", "/usr/lib", "must name a folder inside"},
		{"missing folder", "functions/no-such-function", "no folder functions/no-such-function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			_, err := Build(context.Background(), repoRoot, Function{LogicalID: "XFunction", CodeDir: tt.codeDir}, out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			assertEmptyDir(t, out)
		})
	}
}

func TestBuildReportsCompileErrors(t *testing.T) {
	out := t.TempDir()
	fn := Function{LogicalID: "BrokenFunction", CodeDir: "infra/lambdarun/testdata/brokenfn"}
	_, err := Build(context.Background(), repoRoot, fn, out)
	if err == nil || !strings.Contains(err.Error(), "build BrokenFunction") || !strings.Contains(err.Error(), "cannot use") {
		t.Fatalf("err = %v, want the compiler's message for BrokenFunction", err)
	}
	assertEmptyDir(t, out) // no bootstrap, no temporary folder left behind
}

func TestBuildProducesALinuxBootstrap(t *testing.T) {
	info, err := buildinfo.ReadFile(echoBin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"GOOS": "linux", "CGO_ENABLED": "0", "-tags": "lambda.norpc", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
		}
	}
	if filepath.Base(echoBin) != "bootstrap" || !filepath.IsAbs(echoBin) {
		t.Errorf("Build returned %q, want an absolute path to a file named bootstrap", echoBin)
	}
}

func TestBuildRIEReplacesAForeignBinaryThenReusesIt(t *testing.T) {
	ctx := context.Background()
	binDir := t.TempDir()
	// Any binary that is not the pinned emulator must be replaced: here, the echo function.
	data, err := os.ReadFile(echoBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, "aws-lambda-rie"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := BuildRIE(ctx, repoRoot, binDir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Main.Path != RIEModule {
		t.Fatalf("BuildRIE left a binary of module %q, want %q", info.Main.Path, RIEModule)
	}

	// A stamp in the past shows whether the second call rewrites the file.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(bin, old, old); err != nil {
		t.Fatal(err)
	}
	again, err := BuildRIE(ctx, repoRoot, binDir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(again)
	if err != nil {
		t.Fatal(err)
	}
	if again != bin || !st.ModTime().Equal(old) {
		t.Errorf("second BuildRIE returned %s modified %v, want %s left untouched at %v", again, st.ModTime(), bin, old)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("unexpected %s left in %s", e.Name(), dir)
	}
}
