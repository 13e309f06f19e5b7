package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/replica-tls/replica-tls/infra/testkit"
)

// emfLines decodes the CloudWatch embedded metric format lines of a log: each is a JSON object whose
// _aws member names a timestamp and directives; every metric a directive names is a top-level
// number, and every dimension a top-level string. It fails the test on a line that is not so.
func emfLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line is not JSON: %v\n%s", err, line)
		}
		aws, _ := doc["_aws"].(map[string]any)
		if _, ok := aws["Timestamp"].(float64); !ok {
			t.Fatalf("EMF line without a numeric _aws.Timestamp: %s", line)
		}
		dirs, _ := aws["CloudWatchMetrics"].([]any)
		if len(dirs) == 0 {
			t.Fatalf("EMF line without directives: %s", line)
		}
		for _, d := range dirs {
			dir, _ := d.(map[string]any)
			if ns, _ := dir["Namespace"].(string); ns == "" {
				t.Fatalf("EMF directive without a namespace: %s", line)
			}
			dimSets, _ := dir["Dimensions"].([]any)
			for _, set := range dimSets {
				for _, name := range set.([]any) {
					if _, ok := doc[name.(string)].(string); !ok {
						t.Fatalf("EMF dimension %v is not a top-level string: %s", name, line)
					}
				}
			}
			ms, _ := dir["Metrics"].([]any)
			for _, mm := range ms {
				name, _ := mm.(map[string]any)["Name"].(string)
				if _, ok := doc[name].(float64); !ok {
					t.Fatalf("EMF metric %q is not a top-level number: %s", name, line)
				}
			}
		}
		out = append(out, doc)
	}
	return out
}

// TestRunsWriteMetrics: every run writes its link counts and cluster calls as EMF lines in the
// namespace and service the environment names; the container's first run counts a cold start.
func TestRunsWriteMetrics(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	ev := `{"destination": {"cluster": "west", "database": 1}, "tls_scope": "replica"}`
	if _, err := f.invoke(event(ev)); err != nil {
		t.Fatal(err)
	}
	first := emfLines(t, f.logs.String())
	if len(first) != 1 {
		t.Fatalf("first run wrote %d EMF lines, want 1", len(first))
	}
	m := first[0]
	dir := m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)
	if dir["Namespace"] != "ReplicaTLS" || m["service"] != "replica-tls" {
		t.Errorf("namespace %v, service %v; want ReplicaTLS, replica-tls", dir["Namespace"], m["service"])
	}
	for name, want := range map[string]float64{"LinksSeen": 1, "LinksSecured": 1, "LinksFailed": 0, "ClusterAPIWrites": 2, "ColdStart": 1} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	f.logs.Reset()
	if _, err := f.invoke(event(ev)); err != nil {
		t.Fatal(err)
	}
	second := emfLines(t, f.logs.String())
	if len(second) != 1 || second[0]["ColdStart"] != nil || second[0]["LinksSecured"] != 0.0 || second[0]["ClusterAPIWrites"] != 0.0 {
		t.Errorf("second run's metrics %v: want no cold start, nothing secured, no writes", second)
	}
}
