package lambdarun

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Lambda's own defaults, used when neither the function nor Globals set a value.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
)

// UnresolvedPrefix starts the placeholder that stands for a template value that cannot be computed
// locally, such as "<unresolved: !GetAtt AuditBus.Arn>". Override such variables with real local values.
const UnresolvedPrefix = "<unresolved: "

// pseudoParam gives the local values of the pseudo parameters that have a fixed meaning in us-east-1;
// AWS::StackName, AWS::StackId and AWS::NotificationARNs stay unresolved.
func pseudoParam(name string) (string, bool) {
	switch name {
	case "AWS::Region":
		return "us-east-1", true
	case "AWS::AccountId":
		return "123456789012", true
	case "AWS::Partition":
		return "aws", true
	case "AWS::URLSuffix":
		return "amazonaws.com", true
	}
	return "", false
}

// Function is what the local runner needs to know about one AWS::Serverless::Function.
type Function struct {
	LogicalID string
	// CodeDir is the function's main package, relative to the repository root (where template.yaml
	// lives), e.g. "functions/replica-created". It comes from Metadata.LocalCodeDir, else from a
	// CodeUri other than ".", else from the convention functions/<kebab-case LogicalId minus "Function">.
	CodeDir  string
	Env      map[string]string // Globals.Function.Environment.Variables with the function's own on top
	Timeout  time.Duration
	MemoryMB int
	// Unresolved lists, sorted, the properties whose values could not be computed locally, e.g.
	// "Environment.Variables.AUDIT_BUS_ARN" (its Env value is an UnresolvedPrefix placeholder) or
	// "Timeout" (the default is used instead).
	Unresolved []string
}

// LoadTemplate reads a SAM template and returns its AWS::Serverless::Function resources by logical id.
// !Ref and !Sub (and Fn::Join) over Parameters' Default values and the pseudo parameters AWS::Region
// (us-east-1), AWS::AccountId (123456789012), AWS::Partition and AWS::URLSuffix are resolved; anything
// else (resources, !GetAtt, !If, parameters without Default) becomes a placeholder listed in Unresolved.
func LoadTemplate(file string) (map[string]Function, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	fns, err := parseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", file, err)
	}
	return fns, nil
}

func parseTemplate(data []byte) (map[string]Function, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || deref(doc.Content[0]).Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping")
	}
	root := deref(doc.Content[0])
	res := resolver{params: map[string]*yaml.Node{}}
	if params := lookup(root, "Parameters"); params != nil {
		for _, kv := range pairs(params) {
			res.params[kv.key] = lookup(kv.value, "Default") // nil: no default
		}
	}
	resources := lookup(root, "Resources")
	if resources == nil || resources.Kind != yaml.MappingNode {
		return nil, errors.New("no Resources mapping")
	}
	globals := lookup(lookup(root, "Globals"), "Function")

	fns := map[string]Function{}
	for _, kv := range pairs(resources) {
		if scalar(lookup(kv.value, "Type")) != "AWS::Serverless::Function" {
			continue
		}
		fn, err := res.function(kv.key, kv.value, globals)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", kv.key, err)
		}
		fns[kv.key] = fn
	}
	return fns, nil
}

func (r resolver) function(id string, resource, globals *yaml.Node) (Function, error) {
	props := lookup(resource, "Properties")
	fn := Function{LogicalID: id, Env: map[string]string{}, Timeout: DefaultTimeout, MemoryMB: DefaultMemoryMB}
	unresolved := map[string]bool{}

	for _, scope := range []*yaml.Node{globals, props} { // the function's own values win
		vars := lookup(lookup(scope, "Environment"), "Variables")
		if vars != nil && vars.Kind != yaml.MappingNode {
			return Function{}, errors.New("property Environment.Variables is not a mapping")
		}
		for _, kv := range pairs(vars) {
			prop := "Environment.Variables." + kv.key
			v, ok := r.resolve(kv.value)
			if !ok {
				v = UnresolvedPrefix + render(kv.value) + ">"
			}
			fn.Env[kv.key] = v
			unresolved[prop] = !ok
		}
		if n := lookup(scope, "Timeout"); n != nil {
			secs, ok := r.resolveInt(n)
			if ok && secs <= 0 {
				return Function{}, fmt.Errorf("property Timeout %d is not a positive number of seconds", secs)
			}
			if ok {
				fn.Timeout = time.Duration(secs) * time.Second
			}
			unresolved["Timeout"] = !ok
		}
		if n := lookup(scope, "MemorySize"); n != nil {
			mb, ok := r.resolveInt(n)
			if ok && mb <= 0 {
				return Function{}, fmt.Errorf("property MemorySize %d is not a positive number of MB", mb)
			}
			if ok {
				fn.MemoryMB = mb
			}
			unresolved["MemorySize"] = !ok
		}
	}
	for prop, bad := range unresolved {
		if bad {
			fn.Unresolved = append(fn.Unresolved, prop)
		}
	}
	sort.Strings(fn.Unresolved)

	dir, err := codeDir(id, resource, props)
	if err != nil {
		return Function{}, err
	}
	fn.CodeDir = dir
	return fn, nil
}

// codeDir applies the documented convention; BuildMethod: makefile hides the real folder from SAM.
func codeDir(id string, resource, props *yaml.Node) (string, error) {
	dir, from := scalar(lookup(lookup(resource, "Metadata"), "LocalCodeDir")), "Metadata.LocalCodeDir"
	if dir == "" {
		uri := scalar(lookup(props, "CodeUri"))
		if uri != "" && path.Clean(uri) != "." && !strings.Contains(uri, "://") {
			dir, from = uri, "CodeUri"
		}
	}
	if dir == "" {
		return "functions/" + kebab(strings.TrimSuffix(id, "Function")), nil
	}
	clean := path.Clean(strings.ReplaceAll(dir, `\`, "/"))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return "", fmt.Errorf("%s %q must name a folder inside the repository", from, dir)
	}
	return clean, nil
}

// kebab turns "ReplicaCreated" into "replica-created" and "TLSSweep" into "tls-sweep".
func kebab(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, c := range rs {
		if unicode.IsUpper(c) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

type resolver struct {
	params map[string]*yaml.Node // parameter name -> Default node, nil when it has none
}

// resolve computes a scalar value; ok is false when the value depends on something only AWS knows.
func (r resolver) resolve(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil {
		return "", true
	}
	fnName, arg := Intrinsic(n)
	switch fnName {
	case "":
		if n.Kind == yaml.ScalarNode {
			if n.ShortTag() == "!!null" {
				return "", true
			}
			return n.Value, true
		}
		return "", false // a list or mapping is no environment value
	case "Ref":
		return r.ref(scalar(arg))
	case "Sub":
		return r.sub(arg)
	case "Join":
		return r.join(arg)
	default:
		return "", false
	}
}

func (r resolver) resolveInt(n *yaml.Node) (int, bool) {
	s, ok := r.resolve(n)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSpace(s))
	return i, err == nil
}

func (r resolver) ref(name string) (string, bool) {
	if v, ok := pseudoParam(name); ok {
		return v, true
	}
	// CloudFormation allows only literal defaults; anything else is not resolved (nor followed).
	if def := deref(r.params[name]); def != nil && def.Kind == yaml.ScalarNode {
		if fnName, _ := Intrinsic(def); fnName == "" {
			return def.Value, true
		}
	}
	return "", false // a resource, a parameter without Default, or a name the template lacks
}

// sub implements Fn::Sub in both forms: "text ${Name}" and ["text ${Name}", {Name: value}].
func (r resolver) sub(arg *yaml.Node) (string, bool) {
	arg = deref(arg)
	var text string
	vars := map[string]*yaml.Node{}
	switch {
	case arg != nil && arg.Kind == yaml.ScalarNode:
		text = arg.Value
	case arg != nil && arg.Kind == yaml.SequenceNode && len(arg.Content) == 2:
		text = scalar(arg.Content[0])
		for _, kv := range pairs(arg.Content[1]) {
			vars[kv.key] = kv.value
		}
	default:
		return "", false
	}
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), true
		}
		b.WriteString(text[:i])
		j := strings.Index(text[i:], "}")
		if j < 0 {
			return "", false
		}
		name := text[i+2 : i+j]
		text = text[i+j+1:]
		if strings.HasPrefix(name, "!") { // ${!Literal} is the escape for a literal ${Literal}
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var v string
		var ok bool
		if n, found := vars[name]; found {
			v, ok = r.resolve(n)
		} else if !strings.Contains(name, ".") { // Name.Attr is a GetAtt
			v, ok = r.ref(name)
		}
		if !ok {
			return "", false
		}
		b.WriteString(v)
	}
}

func (r resolver) join(arg *yaml.Node) (string, bool) {
	arg = deref(arg)
	if arg == nil || arg.Kind != yaml.SequenceNode || len(arg.Content) != 2 {
		return "", false
	}
	list := deref(arg.Content[1])
	if list == nil || list.Kind != yaml.SequenceNode {
		return "", false
	}
	parts := make([]string, 0, len(list.Content))
	for _, item := range list.Content {
		v, ok := r.resolve(item)
		if !ok {
			return "", false
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, scalar(arg.Content[0])), true
}

// Intrinsic recognises a CloudFormation function in short (!Sub x) or long ({Fn::Sub: x}, {Ref: x})
// form and returns its name without prefix ("Ref", "Sub", "GetAtt", "If"...) and its argument; ""
// for any other node. The template checks read the template with the same rule.
func Intrinsic(n *yaml.Node) (string, *yaml.Node) {
	if n == nil {
		return "", nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return strings.TrimPrefix(n.Tag, "!"), n
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		key := n.Content[0].Value
		if key == "Ref" || key == "Condition" {
			return key, n.Content[1]
		}
		if name, ok := strings.CutPrefix(key, "Fn::"); ok {
			return name, n.Content[1]
		}
	}
	return "", nil
}

// render writes a template value back in a short readable form for placeholders.
func render(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return ""
	}
	tag := ""
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		tag = n.Tag + " "
	}
	switch n.Kind {
	case yaml.SequenceNode:
		items := make([]string, len(n.Content))
		for i, c := range n.Content {
			items[i] = render(c)
		}
		return tag + "[" + strings.Join(items, ", ") + "]"
	case yaml.MappingNode:
		items := make([]string, 0, len(n.Content)/2)
		for _, kv := range pairs(n) {
			items = append(items, kv.key+": "+render(kv.value))
		}
		return tag + "{" + strings.Join(items, ", ") + "}"
	default:
		return tag + n.Value
	}
}

type pair struct {
	key   string
	value *yaml.Node
}

func pairs(n *yaml.Node) []pair {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, pair{key: n.Content[i].Value, value: n.Content[i+1]})
	}
	return out
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	for _, kv := range pairs(n) {
		if kv.key == key {
			return deref(kv.value)
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}
