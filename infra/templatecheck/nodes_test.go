package templatecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
)

// doc is template.yaml as YAML nodes, for the checks that must see intrinsic functions (!Ref, !Sub,
// !If...) as they are written.
type doc struct {
	params    map[string]*yaml.Node // name -> the parameter's mapping
	resources map[string]*yaml.Node // logical id -> the resource's mapping, Fn::ForEach bodies included
	globals   *yaml.Node            // Globals.Function
}

func loadDoc(t *testing.T) doc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file yaml.Node
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	top := file.Content[0]
	d := doc{params: map[string]*yaml.Node{}, resources: map[string]*yaml.Node{}, globals: get(top, "Globals", "Function")}
	for _, kv := range pairs(get(top, "Parameters")) {
		d.params[kv.key] = kv.value
	}
	for _, kv := range pairs(get(top, "Resources")) {
		switch {
		case kv.value.Kind == yaml.MappingNode:
			d.resources[kv.key] = kv.value
		case strings.HasPrefix(kv.key, "Fn::ForEach::") && kv.value.Kind == yaml.SequenceNode && len(kv.value.Content) == 3:
			// [identifier, collection, {LogicalId&{identifier}: resource}]: the body is what each
			// iteration creates.
			for _, body := range pairs(kv.value.Content[2]) {
				d.resources[body.key] = body.value
			}
		default:
			t.Fatalf("resource %s: neither a resource nor an Fn::ForEach block", kv.key)
		}
	}
	if len(d.resources) == 0 {
		t.Fatal("template.yaml has no resources")
	}
	return d
}

// ofType returns the logical ids of the resources of one type, sorted.
func (d doc) ofType(typ string) []string {
	var ids []string
	for id, r := range d.resources {
		if scalar(get(r, "Type")) == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (d doc) functions() []string { return d.ofType("AWS::Serverless::Function") }

// paramDefault is a parameter's Default, and whether the parameter exists.
func (d doc) paramDefault(name string) (string, bool) {
	p, ok := d.params[name]
	if !ok {
		return "", false
	}
	return scalar(get(p, "Default")), true
}

type pair struct {
	key   string
	value *yaml.Node
}

func pairs(n *yaml.Node) []pair {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, pair{n.Content[i].Value, n.Content[i+1]})
	}
	return out
}

// get follows mapping keys; nil when one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		var next *yaml.Node
		for _, kv := range pairs(n) {
			if kv.key == key {
				next = kv.value
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// intrinsic names the CloudFormation function a node is, and its argument (the runner's rule).
func intrinsic(n *yaml.Node) (string, *yaml.Node) { return lambdarun.Intrinsic(n) }

// isRef reports whether n is !Ref target.
func isRef(n *yaml.Node, target string) bool {
	fn, arg := intrinsic(n)
	return fn == "Ref" && scalar(arg) == target
}

// isGetAtt reports whether n is !GetAtt target (e.g. "LeaseTable.Arn").
func isGetAtt(n *yaml.Node, target string) bool {
	fn, arg := intrinsic(n)
	if fn != "GetAtt" {
		return false
	}
	if arg.Kind == yaml.SequenceNode {
		parts := make([]string, len(arg.Content))
		for i, c := range arg.Content {
			parts[i] = scalar(c)
		}
		return strings.Join(parts, ".") == target
	}
	return scalar(arg) == target
}

// items is a sequence's elements, or the node itself when it is a single value.
func items(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode && n.Tag == "!!seq" {
		return n.Content
	}
	return []*yaml.Node{n}
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// references lists the names a value depends on: the targets of !Ref, the resources of !GetAtt and the
// variables of !Sub (AWS::StackName, parameters, resources). The condition of an !If is not a
// reference; both of its branches are walked.
func references(n *yaml.Node) []string {
	var out []string
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		fn, arg := intrinsic(n)
		switch fn {
		case "Ref":
			out = append(out, scalar(arg))
			return
		case "GetAtt":
			target := scalar(arg)
			if arg.Kind == yaml.SequenceNode && len(arg.Content) > 0 {
				target = scalar(arg.Content[0])
			}
			out = append(out, strings.SplitN(target, ".", 2)[0])
			return
		case "Sub":
			text := arg
			if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 {
				text = arg.Content[0]
				for _, kv := range pairs(arg.Content[1]) {
					walk(kv.value)
				}
			}
			for _, m := range subVar.FindAllStringSubmatch(scalar(text), -1) {
				out = append(out, strings.SplitN(m[1], ".", 2)[0])
			}
			return
		case "If":
			if arg.Kind == yaml.SequenceNode && len(arg.Content) == 3 {
				walk(arg.Content[1])
				walk(arg.Content[2])
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return out
}

// resolver turns template values into plain values (strings, lists, maps) the way CloudFormation
// would with the given parameter values: Ref, Sub and Split over parameters and pseudo parameters.
// Anything else is an error: the values it resolves (event patterns, input transformers) must not
// depend on resources.
type resolver struct {
	params map[string]string
}

func (d doc) resolver(overrides map[string]string) resolver {
	r := resolver{params: map[string]string{
		"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
		"AWS::StackName": "replica-tls-test", "AWS::URLSuffix": "amazonaws.com",
	}}
	for name := range d.params {
		r.params[name], _ = d.paramDefault(name)
	}
	for k, v := range overrides {
		r.params[k] = v
	}
	return r
}

func (r resolver) value(n *yaml.Node) (any, error) {
	fn, arg := intrinsic(n)
	switch fn {
	case "":
	case "Ref":
		v, ok := r.params[scalar(arg)]
		if !ok {
			return nil, fmt.Errorf("!Ref %s: not a parameter", scalar(arg))
		}
		return v, nil
	case "Sub":
		if arg.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("!Sub with a variable map is not supported here")
		}
		var err error
		out := subVar.ReplaceAllStringFunc(arg.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := r.params[name]
			if !ok {
				err = fmt.Errorf("!Sub ${%s}: not a parameter", name)
			}
			return v
		})
		return out, err
	case "Split":
		if arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
			return nil, fmt.Errorf("!Split needs [delimiter, text]")
		}
		text, err := r.value(arg.Content[1])
		if err != nil {
			return nil, err
		}
		s, ok := text.(string)
		if !ok {
			return nil, fmt.Errorf("!Split of a non-string")
		}
		parts := strings.Split(s, scalar(arg.Content[0]))
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	default:
		return nil, fmt.Errorf("!%s cannot be resolved without AWS", fn)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := r.value(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for _, kv := range pairs(n) {
			v, err := r.value(kv.value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", kv.key, err)
			}
			out[kv.key] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported YAML node kind %v", n.Kind)
}
