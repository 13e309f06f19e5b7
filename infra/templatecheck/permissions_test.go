package templatecheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
)

const module = "github.com/replica-tls/replica-tls"

// statement is one Allow statement of a function's inline policies; a statement under !If counts
// (it is granted when its condition holds).
type statement struct {
	sid       string
	actions   []string
	resources []*yaml.Node
	condition *yaml.Node
}

func (d doc) statements(t *testing.T, fn string) []statement {
	t.Helper()
	var out []statement
	for _, policy := range items(get(d.resources[fn], "Properties", "Policies")) {
		stmts := get(policy, "Statement")
		if stmts == nil {
			t.Fatalf("%s: policy without an inline Statement list (SAM policy templates are not checked): write the statements", fn)
		}
		for _, s := range items(stmts) {
			if name, arg := intrinsic(s); name == "If" {
				s = arg.Content[1]
			}
			if scalar(get(s, "Effect")) != "Allow" {
				t.Fatalf("%s: statement %q is not an Allow", fn, scalar(get(s, "Sid")))
			}
			st := statement{sid: scalar(get(s, "Sid")), resources: items(get(s, "Resource")), condition: get(s, "Condition")}
			for _, a := range items(get(s, "Action")) {
				st.actions = append(st.actions, scalar(a))
			}
			out = append(out, st)
		}
	}
	return out
}

func (d doc) granted(t *testing.T, fn string) []string {
	t.Helper()
	var out []string
	for _, s := range d.statements(t, fn) {
		out = append(out, s.actions...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPermissionsMatchTheTable: every action a function is granted is in allowedActions with its
// reason, and every entry there is granted.
func TestPermissionsMatchTheTable(t *testing.T) {
	d := loadDoc(t)
	fns := d.functions()
	var tabled []string
	for fn := range allowedActions {
		tabled = append(tabled, fn)
	}
	slices.Sort(tabled)
	if diff := cmp.Diff(fns, tabled); diff != "" {
		t.Errorf("functions in template.yaml (-) and in allowedActions (+) differ:\n%s", diff)
	}
	for _, fn := range fns {
		var want []string
		for action := range allowedActions[fn] {
			want = append(want, action)
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, d.granted(t, fn)); diff != "" {
			t.Errorf("%s: allowedActions (-) and the template's grants (+) differ; review the change and update the table:\n%s", fn, diff)
		}
	}
}

// TestGrantedActionsAreUsed: each entry of allowedActions is backed by what it says.
func TestGrantedActionsAreUsed(t *testing.T) {
	d := loadDoc(t)
	fns, err := lambdarun.LoadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range d.functions() {
		t.Run(fn, func(t *testing.T) {
			calls := sdkCalls(t, fns[fn].CodeDir)
			granted := d.granted(t, fn)
			for action, g := range allowedActions[fn] {
				switch g.by {
				case codeCall:
					if !calls.make(action) {
						t.Errorf("%s (%s): no code in %s's packages calls it: drop the grant", action, g.why, fns[fn].CodeDir)
					}
				case secretsKey:
					if !slices.ContainsFunc(g.implies, func(a string) bool { return slices.Contains(granted, a) }) {
						t.Errorf("%s: none of %v, which need the key, is granted", action, g.implies)
					}
				case lambdaFeature:
					dest := get(d.resources[fn], "Properties", "EventInvokeConfig", "DestinationConfig", "OnFailure")
					if scalar(get(dest, "Type")) != "SQS" || !isGetAtt(get(dest, "Destination"), "FailedEventsQueue.Arn") {
						t.Errorf("%s: the function has no OnFailure destination FailedEventsQueue to justify it", action)
					}
				}
			}
		})
	}
}

// TestTheUsageCheckSeesUnusedActions guards the check above: an action nothing calls is reported.
func TestTheUsageCheckSeesUnusedActions(t *testing.T) {
	calls := sdkCalls(t, "functions/replica-created")
	for action, want := range map[string]bool{
		"secretsmanager:GetSecretValue": true,
		"secretsmanager:ListSecrets":    true, // through its paginator
		"events:PutEvents":              true,
		"secretsmanager:RotateSecret":   false, // no code starts a rotation
		"secretsmanager:DeleteSecret":   false,
		"dynamodb:Scan":                 false,
	} {
		if got := calls.make(action); got != want {
			t.Errorf("calls.make(%s) = %v, want %v", action, got, want)
		}
	}
}

// TestEveryFunctionHoldsLeasesOnTheLeaseTable: the lease table exists as the lease code expects it,
// every function knows its name and may take, renew, release and read leases there, and nowhere else.
func TestEveryFunctionHoldsLeasesOnTheLeaseTable(t *testing.T) {
	d := loadDoc(t)
	table := d.resources["LeaseTable"]
	props := get(table, "Properties")
	if scalar(get(table, "Type")) != "AWS::DynamoDB::Table" {
		t.Fatal("no AWS::DynamoDB::Table LeaseTable")
	}
	keys := items(get(props, "KeySchema"))
	attrs := items(get(props, "AttributeDefinitions"))
	if len(keys) != 1 || scalar(get(keys[0], "AttributeName")) != "resource" || scalar(get(keys[0], "KeyType")) != "HASH" ||
		len(attrs) != 1 || scalar(get(attrs[0], "AttributeName")) != "resource" || scalar(get(attrs[0], "AttributeType")) != "S" {
		t.Error("LeaseTable: the key must be resource (S), nothing else")
	}
	if scalar(get(props, "BillingMode")) != "PAY_PER_REQUEST" {
		t.Error("LeaseTable: BillingMode must be PAY_PER_REQUEST")
	}
	if scalar(get(props, "TimeToLiveSpecification", "AttributeName")) != "ttl" || scalar(get(props, "TimeToLiveSpecification", "Enabled")) != "true" {
		t.Error("LeaseTable: TTL on attribute ttl must be enabled")
	}
	if !isRef(get(d.globals, "Environment", "Variables", "LEASE_TABLE_NAME"), "LeaseTable") {
		t.Error("Globals: LEASE_TABLE_NAME must be !Ref LeaseTable")
	}
	want := []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
	for _, fn := range d.functions() {
		found := 0
		for _, s := range d.statements(t, fn) {
			onLeases := slices.ContainsFunc(s.resources, func(n *yaml.Node) bool { return isGetAtt(n, "LeaseTable.Arn") })
			if !onLeases {
				for _, a := range s.actions {
					if strings.HasPrefix(a, "dynamodb:") && !slices.ContainsFunc(s.resources, func(n *yaml.Node) bool { return isGetAtt(n, "ExpiryNoticeTable.Arn") }) {
						t.Errorf("%s statement %q: %s on something other than the lease or notice table", fn, s.sid, a)
					}
				}
				continue
			}
			found++
			actions := slices.Sorted(slices.Values(s.actions))
			if len(s.resources) != 1 || !slices.Equal(actions, want) {
				t.Errorf("%s statement %q: want exactly %v on !GetAtt LeaseTable.Arn, got %v on %d resources", fn, s.sid, want, actions, len(s.resources))
			}
		}
		if found != 1 {
			t.Errorf("%s: %d statements on the lease table, want 1", fn, found)
		}
	}
}

// TestKeyUseGoesThroughSecretsManager: the KMS key of the secrets serves Secrets Manager calls for
// secrets under the prefix, nothing else.
func TestKeyUseGoesThroughSecretsManager(t *testing.T) {
	d := loadDoc(t)
	for _, fn := range d.functions() {
		for _, s := range d.statements(t, fn) {
			if !slices.ContainsFunc(s.actions, func(a string) bool { return strings.HasPrefix(a, "kms:") }) {
				continue
			}
			if len(s.resources) != 1 || !isRef(s.resources[0], "SecretsKmsKeyArn") {
				t.Errorf("%s statement %q: KMS actions only on !Ref SecretsKmsKeyArn", fn, s.sid)
			}
			if get(s.condition, "StringEquals", "kms:ViaService") == nil || get(s.condition, "StringLike", "kms:EncryptionContext:SecretARN") == nil {
				t.Errorf("%s statement %q: KMS use needs the kms:ViaService and kms:EncryptionContext:SecretARN conditions", fn, s.sid)
			}
		}
	}
}

// calls maps an AWS SDK service package (e.g. "secretsmanager") to the names called in the files that
// import it.
type calls map[string]map[string]bool

// make reports whether the code makes the API call an IAM action authorizes.
func (c calls) make(action string) bool {
	prefix, op, _ := strings.Cut(action, ":")
	pkg := map[string]string{"events": "eventbridge"}[prefix]
	if pkg == "" {
		pkg = prefix
	}
	return c[pkg][op] || c[pkg]["New"+op+"Paginator"]
}

// sdkCalls parses the module's packages that the function at dir builds from (go list -deps) and
// collects, per AWS SDK service package a file imports, the selector calls in that file
// (s.api.PutSecretValue(...), secretsmanager.NewListSecretsPaginator(...)).
func sdkCalls(t *testing.T, dir string) calls {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}`, "./"+dir)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./%s: %v", dir, err)
	}
	c := calls{}
	fset := token.NewFileSet()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 || !strings.HasPrefix(parts[0], module+"/") || parts[2] == "" {
			continue
		}
		for _, name := range strings.Split(parts[2], ",") {
			f, err := parser.ParseFile(fset, filepath.Join(parts[1], name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			var services []string
			for _, imp := range f.Imports {
				if svc, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), "github.com/aws/aws-sdk-go-v2/service/"); ok && !strings.Contains(svc, "/") {
					services = append(services, svc)
				}
			}
			if len(services) == 0 {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					for _, svc := range services {
						if c[svc] == nil {
							c[svc] = map[string]bool{}
						}
						c[svc][sel.Sel.Name] = true
					}
				}
				return true
			})
		}
	}
	if len(c) == 0 {
		t.Fatalf("./%s: no AWS SDK call found in its packages", dir)
	}
	return c
}
