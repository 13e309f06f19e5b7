// Package templatecheck tests template.yaml for what cfn-lint does not catch: every function can be
// built by SAM (a Makefile target) and run locally (a source folder), runs on the documented runtime,
// and gets only the permissions its code uses (allowedActions); leases, logs, alarms and notifications
// are wired for every function; no resource has a fixed physical name; and the event patterns and
// notification texts do what they say in EventBridge (moto_server).
package templatecheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/replica-tls/replica-tls/infra/lambdarun"
)

const root = "../.."

type template struct {
	Globals struct {
		Function struct {
			Runtime       string   `yaml:"Runtime"`
			Architectures []string `yaml:"Architectures"`
			Handler       string   `yaml:"Handler"`
			CodeURI       string   `yaml:"CodeUri"`
		} `yaml:"Function"`
	} `yaml:"Globals"`
	Resources map[string]yaml.Node `yaml:"Resources"`
}

type resource struct {
	Type       string    `yaml:"Type"`
	Metadata   yaml.Node `yaml:"Metadata"`
	Properties yaml.Node `yaml:"Properties"`
}

// resources decodes the plain resources, leaving out Fn::ForEach blocks (sequences).
func (tpl template) resources(t *testing.T) map[string]resource {
	t.Helper()
	out := map[string]resource{}
	for id, n := range tpl.Resources {
		if n.Kind != yaml.MappingNode {
			continue
		}
		var r resource
		if err := n.Decode(&r); err != nil {
			t.Fatalf("resource %s: %v", id, err)
		}
		out[id] = r
	}
	return out
}

func load(t *testing.T) (template, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("parse template.yaml: %v", err)
	}
	return tpl, string(raw)
}

func TestFunctionsBuildAndRunAsDocumented(t *testing.T) {
	tpl, _ := load(t)
	g := tpl.Globals.Function
	if g.Runtime != "provided.al2023" || len(g.Architectures) != 1 || g.Architectures[0] != "arm64" || g.Handler != "bootstrap" || g.CodeURI != "." {
		t.Errorf("Globals.Function must be provided.al2023, arm64, Handler bootstrap, CodeUri .: %+v", g)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := lambdarun.LoadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatal("no functions in template.yaml")
	}
	for id, fn := range fns {
		t.Run(id, func(t *testing.T) {
			res := tpl.resources(t)[id]
			var meta map[string]string
			if err := res.Metadata.Decode(&meta); err != nil || meta["BuildMethod"] != "makefile" {
				t.Errorf("Metadata.BuildMethod must be makefile: %v %v", meta, err)
			}
			target := regexp.MustCompile(`(?m)^build-` + id + `:`)
			if !target.Match(makefile) {
				t.Errorf("Makefile has no build-%s target (sam build needs it)", id)
			}
			if !regexp.MustCompile(`(?m)^build-` + id + `:\n\t.*\./` + regexp.QuoteMeta(fn.CodeDir) + `\b`).Match(makefile) {
				t.Errorf("build-%s does not build ./%s", id, fn.CodeDir)
			}
			if _, err := os.Stat(filepath.Join(root, fn.CodeDir, "main.go")); err != nil {
				t.Errorf("source folder %s: %v", fn.CodeDir, err)
			}
		})
	}
}

func TestPermissionsAreScoped(t *testing.T) {
	_, raw := load(t)
	// Every Secrets Manager permission other than ListSecrets (which has no resource-level
	// permissions) is limited to the prefix; PutEvents only on the audit bus.
	for _, bad := range []string{"secretsmanager:*", "events:*", "\"*\"\n              Action: secretsmanager:GetSecretValue"} {
		if strings.Contains(raw, bad) {
			t.Errorf("template grants %q", bad)
		}
	}
	listStar := regexp.MustCompile(`Action: ([a-z]+:[A-Za-z]+)\n\s+Resource: "\*"`)
	for _, m := range listStar.FindAllStringSubmatch(raw, -1) {
		if m[1] != "secretsmanager:ListSecrets" {
			t.Errorf("%s is granted on every resource", m[1])
		}
	}
	if !strings.Contains(raw, "Action: events:PutEvents\n              Resource: !GetAtt AuditBus.Arn") {
		t.Errorf("PutEvents must be granted on the audit bus only")
	}
}

func TestEveryRuleHasRetriesAndADeadLetterQueue(t *testing.T) {
	tpl, _ := load(t)
	for id, res := range tpl.resources(t) {
		if res.Type != "AWS::Serverless::Function" {
			continue
		}
		var props struct {
			Events map[string]struct {
				Type       string `yaml:"Type"`
				Properties struct {
					RetryPolicy      map[string]any `yaml:"RetryPolicy"`
					DeadLetterConfig map[string]any `yaml:"DeadLetterConfig"`
				} `yaml:"Properties"`
			} `yaml:"Events"`
			EventInvokeConfig struct {
				DestinationConfig struct {
					OnFailure map[string]any `yaml:"OnFailure"`
				} `yaml:"DestinationConfig"`
			} `yaml:"EventInvokeConfig"`
		}
		if err := res.Properties.Decode(&props); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		for name, ev := range props.Events {
			if ev.Type != "EventBridgeRule" && ev.Type != "ScheduleV2" {
				continue
			}
			if ev.Properties.RetryPolicy == nil || ev.Properties.DeadLetterConfig == nil {
				t.Errorf("%s event %s: needs RetryPolicy and DeadLetterConfig", id, name)
			}
		}
		if len(props.Events) > 0 && props.EventInvokeConfig.DestinationConfig.OnFailure == nil {
			t.Errorf("%s: failed asynchronous invocations must go to a failure destination", id)
		}
	}
}
