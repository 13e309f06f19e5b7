package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// This file holds an EMF validator written from the CloudWatch embedded metric format specification
// (the "Specification: Embedded metric format" page of the CloudWatch user guide and its JSON schema),
// independently of the encoder: its unit list and limits are transcribed here, not taken from the
// package, so a mistake in one does not hide in the other.

const (
	emfMaxEventBytes = 256 * 1024 // "limited to a maximum size of 256 KB"
	emfMaxMetrics    = 100        // Metrics "MUST NOT contain more than 100 MetricDefinition objects"
	emfMaxDimKeys    = 30         // a DimensionSet's dimension keys
	emfMaxArray      = 100        // "Numeric array metric targets MUST NOT have more than 100 members"
	emfMaxNameLen    = 255        // schema maxLength of Namespace, Name and dimension references
)

// emfUnits is the schema's Unit pattern.
var emfUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true,
	"Bytes": true, "Kilobytes": true, "Megabytes": true, "Gigabytes": true, "Terabytes": true,
	"Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true,
	"Count/Second": true, "None": true,
}

// validateEMF reports the first way line breaks the embedded metric format specification.
func validateEMF(line []byte) error {
	if len(line) > emfMaxEventBytes {
		return fmt.Errorf("line of %d bytes exceeds the %d-byte event limit", len(line), emfMaxEventBytes)
	}
	if err := checkUniqueMembers(line); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return fmt.Errorf("not a JSON value: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return fmt.Errorf("root is %T, not an object", root)
	}
	awsV, ok := obj["_aws"]
	if !ok {
		return errors.New("root has no _aws member")
	}
	meta, ok := awsV.(map[string]any)
	if !ok {
		return fmt.Errorf("_aws is %T, not an object", awsV)
	}
	if err := onlyMembers("_aws", meta, "Timestamp", "CloudWatchMetrics"); err != nil {
		return err
	}
	ts, ok := meta["Timestamp"].(json.Number)
	if !ok {
		return fmt.Errorf("_aws.Timestamp is %T, not a number", meta["Timestamp"])
	}
	if ms, err := ts.Int64(); err != nil || ms < 0 {
		return fmt.Errorf("_aws.Timestamp %s is not a whole number of milliseconds since the epoch", ts)
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok {
		return fmt.Errorf("_aws.CloudWatchMetrics is %T, not an array", meta["CloudWatchMetrics"])
	}
	if len(directives) == 0 {
		return errors.New("_aws.CloudWatchMetrics is empty")
	}
	for i, d := range directives {
		if err := validateDirective(obj, d); err != nil {
			return fmt.Errorf("CloudWatchMetrics[%d]: %w", i, err)
		}
	}
	return nil
}

func validateDirective(root map[string]any, v any) error {
	dir, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("directive is %T, not an object", v)
	}
	if err := onlyMembers("directive", dir, "Namespace", "Dimensions", "Metrics"); err != nil {
		return err
	}
	ns, ok := dir["Namespace"].(string)
	if !ok {
		return fmt.Errorf("Namespace is %T, not a string", dir["Namespace"])
	}
	if ns == "" || len(ns) > emfMaxNameLen {
		return fmt.Errorf("Namespace %q: want 1 to %d characters", ns, emfMaxNameLen)
	}
	sets, ok := dir["Dimensions"].([]any)
	if !ok {
		return fmt.Errorf("Dimensions is %T, not an array", dir["Dimensions"])
	}
	if len(sets) == 0 {
		return errors.New("Dimensions is empty")
	}
	for i, s := range sets {
		set, ok := s.([]any)
		if !ok {
			return fmt.Errorf("Dimensions[%d] is %T, not an array", i, s)
		}
		if len(set) > emfMaxDimKeys {
			return fmt.Errorf("Dimensions[%d] has %d keys, more than %d", i, len(set), emfMaxDimKeys)
		}
		for _, k := range set {
			key, ok := k.(string)
			if !ok {
				return fmt.Errorf("Dimensions[%d] holds %T, not a string", i, k)
			}
			if key == "" || len(key) > emfMaxNameLen {
				return fmt.Errorf("dimension key %q: want 1 to %d characters", key, emfMaxNameLen)
			}
			target, ok := root[key]
			if !ok {
				return fmt.Errorf("dimension %q has no member on the root", key)
			}
			if _, ok := target.(string); !ok {
				return fmt.Errorf("dimension %q target is %T, not a string", key, target)
			}
		}
	}
	defs, ok := dir["Metrics"].([]any)
	if !ok {
		return fmt.Errorf("Metrics is %T, not an array", dir["Metrics"])
	}
	if len(defs) > emfMaxMetrics {
		return fmt.Errorf("Metrics has %d definitions, more than %d", len(defs), emfMaxMetrics)
	}
	for i, d := range defs {
		if err := validateMetricDef(root, d); err != nil {
			return fmt.Errorf("Metrics[%d]: %w", i, err)
		}
	}
	return nil
}

func validateMetricDef(root map[string]any, v any) error {
	def, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("definition is %T, not an object", v)
	}
	if err := onlyMembers("MetricDefinition", def, "Name", "Unit", "StorageResolution"); err != nil {
		return err
	}
	name, ok := def["Name"].(string)
	if !ok {
		return fmt.Errorf("Name is %T, not a string", def["Name"])
	}
	if name == "" || len(name) > emfMaxNameLen {
		return fmt.Errorf("Name %q: want 1 to %d characters", name, emfMaxNameLen)
	}
	if u, present := def["Unit"]; present {
		unit, ok := u.(string)
		if !ok || !emfUnits[unit] {
			return fmt.Errorf("metric %q: Unit %v is not a CloudWatch unit", name, u)
		}
	}
	if r, present := def["StorageResolution"]; present {
		if n, ok := r.(json.Number); !ok || (n.String() != "1" && n.String() != "60") {
			return fmt.Errorf("metric %q: StorageResolution %v is not 1 or 60", name, r)
		}
	}
	target, ok := root[name]
	if !ok {
		return fmt.Errorf("metric %q has no member on the root", name)
	}
	switch t := target.(type) {
	case json.Number:
		return nil
	case []any:
		if len(t) > emfMaxArray {
			return fmt.Errorf("metric %q has %d values, more than %d", name, len(t), emfMaxArray)
		}
		for _, e := range t {
			if _, ok := e.(json.Number); !ok {
				return fmt.Errorf("metric %q array holds %T, not a number", name, e)
			}
		}
		return nil
	}
	return fmt.Errorf("metric %q target is %T, not a number or an array of numbers", name, target)
}

// onlyMembers applies "objects defined by this specification MUST NOT contain any additional members".
func onlyMembers(what string, obj map[string]any, allowed ...string) error {
	for k := range obj {
		found := false
		for _, a := range allowed {
			found = found || k == a
		}
		if !found {
			return fmt.Errorf("%s has member %q, which the specification does not define", what, k)
		}
	}
	for _, a := range allowed {
		if _, ok := obj[a]; !ok && a != "Unit" && a != "StorageResolution" {
			return fmt.Errorf("%s has no %s member", what, a)
		}
	}
	return nil
}

// checkUniqueMembers rejects an object with a member name twice: a decoder keeps one of them, so
// which value CloudWatch would extract is undefined.
func checkUniqueMembers(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key := k.(string)
				if seen[key] {
					return fmt.Errorf("member %q appears twice in one object", key)
				}
				seen[key] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(); err != nil {
		if strings.Contains(err.Error(), "appears twice") {
			return err
		}
		return fmt.Errorf("not a JSON value: %w", err)
	}
	return nil
}

// specExample is the valid document the specification gives.
const specExample = `{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[{"Namespace":"lambda-function-metrics",` +
	`"Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds"}]}]},` +
	`"functionVersion":"$LATEST","time":100,"requestId":"989ffbf8-9ace-4817-a57c-e4dd734019ee"}`

// emfDoc builds a valid document as a map, lets mutate break it, and encodes it.
func emfDoc(t *testing.T, mutate func(root, aws, dir map[string]any)) string {
	t.Helper()
	dir := map[string]any{
		"Namespace":  "ReplicaTLS",
		"Dimensions": []any{[]any{"service"}},
		"Metrics":    []any{map[string]any{"Name": "LinksSeen", "Unit": "Count"}},
	}
	aws := map[string]any{"Timestamp": 1700000000000, "CloudWatchMetrics": []any{dir}}
	root := map[string]any{"_aws": aws, "service": "replica-tls", "LinksSeen": 3}
	if mutate != nil {
		mutate(root, aws, dir)
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatalf("marshal document: %v", err)
	}
	return string(b)
}

func TestValidateEMFAccepts(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"the specification's example", specExample},
		{"the base document", emfDoc(t, nil)},
		{"an array of values", emfDoc(t, func(root, _, _ map[string]any) { root["LinksSeen"] = []any{1, 2.5, 3} })},
		{"no unit", emfDoc(t, func(_, _, dir map[string]any) {
			dir["Metrics"] = []any{map[string]any{"Name": "LinksSeen"}}
		})},
		{"an empty dimension set", emfDoc(t, func(_, _, dir map[string]any) { dir["Dimensions"] = []any{[]any{}} })},
		{"30 dimensions", emfDoc(t, func(root, _, dir map[string]any) {
			set := []any{}
			for i := range 30 {
				k := fmt.Sprintf("d%d", i)
				set = append(set, k)
				root[k] = "v"
			}
			dir["Dimensions"] = []any{set}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateEMF([]byte(tt.line)); err != nil {
				t.Errorf("validateEMF rejected a valid document: %v\n%s", err, tt.line)
			}
		})
	}
}

// TestValidateEMFRejects proves the validator can fail: each malformed document must be refused
// for the stated reason.
func TestValidateEMFRejects(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string // in the error
	}{
		{"not JSON", `{"_aws":`, "not a JSON value"},
		{"data after the object", emfDoc(t, nil) + ` {}`, "after the JSON object"},
		{"root is an array", `[1,2]`, "not an object"},
		{"no _aws", `{"service":"x","LinksSeen":1}`, "no _aws"},
		{"_aws not an object", `{"_aws":[]}`, "_aws is"},
		{"no Timestamp", emfDoc(t, func(_, aws, _ map[string]any) { delete(aws, "Timestamp") }), "Timestamp"},
		{"Timestamp a string", emfDoc(t, func(_, aws, _ map[string]any) { aws["Timestamp"] = "1700000000000" }), "Timestamp"},
		{"Timestamp not whole", emfDoc(t, func(_, aws, _ map[string]any) { aws["Timestamp"] = 1.5 }), "whole number"},
		{"extra _aws member", emfDoc(t, func(_, aws, _ map[string]any) { aws["LogGroupName"] = "x" }), `member "LogGroupName"`},
		{"no CloudWatchMetrics", emfDoc(t, func(_, aws, _ map[string]any) { delete(aws, "CloudWatchMetrics") }), "CloudWatchMetrics"},
		{"CloudWatchMetrics an object", emfDoc(t, func(_, aws, dir map[string]any) { aws["CloudWatchMetrics"] = dir }), "not an array"},
		{"no Namespace", emfDoc(t, func(_, _, dir map[string]any) { delete(dir, "Namespace") }), "Namespace"},
		{"empty Namespace", emfDoc(t, func(_, _, dir map[string]any) { dir["Namespace"] = "" }), "Namespace"},
		{"Dimensions an array of strings", emfDoc(t, func(_, _, dir map[string]any) { dir["Dimensions"] = []any{"service"} }), "not an array"},
		{"dimension key a number", emfDoc(t, func(_, _, dir map[string]any) { dir["Dimensions"] = []any{[]any{7}} }), "not a string"},
		{"dimension without a member", emfDoc(t, func(root, _, _ map[string]any) { delete(root, "service") }), `"service" has no member`},
		{"dimension target a number", emfDoc(t, func(root, _, _ map[string]any) { root["service"] = 1 }), "not a string"},
		{"31 dimensions", emfDoc(t, func(root, _, dir map[string]any) {
			set := []any{}
			for i := range 31 {
				k := fmt.Sprintf("d%d", i)
				set = append(set, k)
				root[k] = "v"
			}
			dir["Dimensions"] = []any{set}
		}), "more than 30"},
		{"no Metrics", emfDoc(t, func(_, _, dir map[string]any) { delete(dir, "Metrics") }), "Metrics"},
		{"101 metrics", emfDoc(t, func(root, _, dir map[string]any) {
			defs := []any{}
			for i := range 101 {
				n := fmt.Sprintf("m%d", i)
				defs = append(defs, map[string]any{"Name": n, "Unit": "Count"})
				root[n] = 1
			}
			dir["Metrics"] = defs
		}), "more than 100"},
		{"metric without a Name", emfDoc(t, func(_, _, dir map[string]any) {
			dir["Metrics"] = []any{map[string]any{"Unit": "Count"}}
		}), "Name"},
		{"metric without a member", emfDoc(t, func(root, _, _ map[string]any) { delete(root, "LinksSeen") }), `"LinksSeen" has no member`},
		{"metric target a string", emfDoc(t, func(root, _, _ map[string]any) { root["LinksSeen"] = "3" }), "not a number"},
		{"metric target nested", emfDoc(t, func(root, _, _ map[string]any) { root["LinksSeen"] = map[string]any{"v": 3} }), "not a number"},
		{"metric array holds a string", emfDoc(t, func(root, _, _ map[string]any) { root["LinksSeen"] = []any{1, "2"} }), "not a number"},
		{"101 values", emfDoc(t, func(root, _, _ map[string]any) {
			vs := make([]any, 101)
			for i := range vs {
				vs[i] = i
			}
			root["LinksSeen"] = vs
		}), "more than 100"},
		{"unknown unit", emfDoc(t, func(_, _, dir map[string]any) {
			dir["Metrics"] = []any{map[string]any{"Name": "LinksSeen", "Unit": "Links"}}
		}), "not a CloudWatch unit"},
		{"unit in the wrong case", emfDoc(t, func(_, _, dir map[string]any) {
			dir["Metrics"] = []any{map[string]any{"Name": "LinksSeen", "Unit": "count"}}
		}), "not a CloudWatch unit"},
		{"extra directive member", emfDoc(t, func(_, _, dir map[string]any) { dir["Extra"] = 1 }), `member "Extra"`},
		{"a member twice", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["service"]],` +
			`"Metrics":[{"Name":"m","Unit":"Count"}]}]},"service":"a","m":1,"m":2}`, "appears twice"},
		{"over 256 KB", emfDoc(t, func(root, _, _ map[string]any) { root["padding"] = strings.Repeat("x", 256*1024) }), "event limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateEMF([]byte(tt.line))
			if err == nil {
				t.Fatalf("validateEMF accepted a malformed document:\n%.300s", tt.line)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}
