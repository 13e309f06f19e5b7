package localrun

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeExample is one `make invoke FN=... EVENT=...` line of README.md.
type readmeExample struct {
	fn, event string
	refused   bool // the README says the function refuses it
}

// invokeExample matches a make invoke command with a concrete function and event; the README may
// break it across lines. Placeholders (FN=<LogicalId>) do not match.
var invokeExample = regexp.MustCompile("make invoke\\s+FN=([A-Za-z0-9]+)\\s+EVENT=([^\\s`<>]+)")

// readmeExamples extracts every make invoke example of the README. An example is expected to be
// refused when the rest of its line says so.
func readmeExamples(readme string) []readmeExample {
	var out []readmeExample
	seen := map[string]bool{}
	for _, m := range invokeExample.FindAllStringSubmatchIndex(readme, -1) {
		fn, event := readme[m[2]:m[3]], readme[m[4]:m[5]]
		rest, _, _ := strings.Cut(readme[m[1]:], "\n")
		if key := fn + " " + event; !seen[key] {
			seen[key] = true
			out = append(out, readmeExample{fn: fn, event: event, refused: strings.Contains(rest, "refused")})
		}
	}
	return out
}

func TestReadmeExamplesExtraction(t *testing.T) {
	readme := "| `make invoke FN=<LogicalId> EVENT=events/<file>` | x |\n" +
		"make invoke FN=SweepFunction EVENT=events/sweep-dry-run.json          # dry run\n" +
		"text `make invoke FN=SecretChangedFunction\nEVENT=events/secret-label-updated-syncer.json` runs\n" +
		"make invoke FN=SweepFunction EVENT=events/sweep-malformed-unknown-field.json # refused\n" +
		"make invoke FN=SweepFunction EVENT=events/sweep-dry-run.json\n"
	want := []readmeExample{
		{fn: "SweepFunction", event: "events/sweep-dry-run.json"},
		{fn: "SecretChangedFunction", event: "events/secret-label-updated-syncer.json"},
		{fn: "SweepFunction", event: "events/sweep-malformed-unknown-field.json", refused: true},
	}
	got := readmeExamples(readme)
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("example %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReadmeInvokeExamplesRunAsWritten runs every `make invoke` example of README.md exactly as a
// reader would, `make invoke FN=... EVENT=...` in the repository: each starts a fresh local stack,
// builds the function's real bootstrap and runs it under the emulator. Each must exit 0 with the
// function's answer, or 1 with its error when the README says the event is refused.
func TestReadmeInvokeExamplesRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the real bootstraps (skipped with -short)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to run the README's examples as written: %v", err)
	}
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(string(readme))
	if len(examples) < 3 {
		t.Fatalf("found %d make invoke examples in README.md (%+v), want at least 3: has the README changed?", len(examples), examples)
	}
	for _, ex := range examples {
		t.Run(ex.fn+"/"+filepath.Base(ex.event), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(root, ex.event)); err != nil {
				t.Fatalf("the README's event file: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "invoke", "FN="+ex.fn, "EVENT="+ex.event)
			cmd.Dir = root
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				code = exit.ExitCode()
			case err != nil:
				t.Fatalf("run make invoke: %v", err)
			}
			out := stdout.String()
			answered := strings.Contains(out, ex.fn+" answered in")
			failed := strings.Contains(out, ex.fn+" returned an error")
			if ex.refused {
				// make reports the command's exit status 1 as its own status 2.
				if code == 0 || !failed {
					t.Errorf("make invoke FN=%s EVENT=%s: exit %d, want the refusal the README promises\nstdout:\n%s\nstderr:\n%s", ex.fn, ex.event, code, out, stderr.String())
				}
				return
			}
			if code != 0 || !answered || failed {
				t.Errorf("make invoke FN=%s EVENT=%s: exit %d, want success as the README promises\nstdout:\n%s\nstderr:\n%s", ex.fn, ex.event, code, out, stderr.String())
			}
		})
	}
}
