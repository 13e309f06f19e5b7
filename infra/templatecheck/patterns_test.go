package templatecheck

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/replica-tls/replica-tls/infra/awslocal"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/audit/schema"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

// The event patterns and input transformers are checked where they run: in EventBridge (moto_server),
// with the template's own patterns and transformers, on events shaped like the real ones.
var motoURL string

func TestMain(m *testing.M) { os.Exit(testkit.MainWithMoto(m, &motoURL)) }

// TestTriggerRulesFilterOnSource: a rule on the trigger bus (any custom bus) matches only the
// AllowedEventSources; a rule on the default bus matches only AWS sources.
func TestTriggerRulesFilterOnSource(t *testing.T) {
	d := loadDoc(t)
	rules := 0
	for _, fn := range d.functions() {
		for _, ev := range pairs(get(d.resources[fn], "Properties", "Events")) {
			if scalar(get(ev.value, "Type")) != "EventBridgeRule" {
				continue
			}
			rules++
			where := fn + " event " + ev.key
			props := get(ev.value, "Properties")
			source := get(props, "Pattern", "source")
			if source == nil {
				t.Errorf("%s: the pattern does not filter on source", where)
				continue
			}
			if bus := get(props, "EventBusName"); bus != nil {
				if !isRef(bus, "TriggerBusName") {
					t.Errorf("%s: custom bus other than TriggerBusName", where)
				}
				fn, arg := intrinsic(source)
				if fn != "Split" || len(arg.Content) != 2 || scalar(arg.Content[0]) != "," || !isRef(arg.Content[1], "AllowedEventSources") {
					t.Errorf(`%s: source must be !Split [",", !Ref AllowedEventSources]`, where)
				}
				continue
			}
			for _, s := range items(source) {
				if !strings.HasPrefix(scalar(s), "aws.") {
					t.Errorf("%s: a default-bus rule must match AWS sources only, not %q", where, scalar(s))
				}
			}
		}
	}
	if rules == 0 {
		t.Fatal("no EventBridgeRule events")
	}
}

// rule is one of the template's rules, set up in moto with an SQS queue as its only target.
type rule struct {
	name     string // the template's name for it
	bus      string
	queueURL string
}

type harness struct {
	t   *testing.T
	eb  *eventbridge.Client
	sqs *sqs.Client
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := awslocal.Config(t.Context(), motoURL)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, eb: eventbridge.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg)}
}

func (h *harness) bus(name string) string {
	h.t.Helper()
	name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	if _, err := h.eb.CreateEventBus(h.t.Context(), &eventbridge.CreateEventBusInput{Name: aws.String(name)}); err != nil {
		h.t.Fatal(err)
	}
	return name
}

// rule creates a rule with the pattern on bus, targeting a new queue (through transformer, if any).
func (h *harness) rule(name, bus string, pattern any, transformer *ebtypes.InputTransformer) rule {
	h.t.Helper()
	ctx := h.t.Context()
	raw, err := json.Marshal(pattern)
	if err != nil {
		h.t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	q, err := h.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(id)})
	if err != nil {
		h.t.Fatal(err)
	}
	attrs, err := h.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(id), EventBusName: aws.String(bus), EventPattern: aws.String(string(raw))}); err != nil {
		h.t.Fatalf("rule %s with pattern %s: %v", name, raw, err)
	}
	target := ebtypes.Target{Id: aws.String("probe"), Arn: aws.String(attrs.Attributes["QueueArn"]), InputTransformer: transformer}
	if _, err := h.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(id), EventBusName: aws.String(bus), Targets: []ebtypes.Target{target}}); err != nil {
		h.t.Fatal(err)
	}
	return rule{name: name, bus: bus, queueURL: aws.ToString(q.QueueUrl)}
}

func (h *harness) put(bus, source, detailType string, detail any) {
	h.t.Helper()
	raw, err := json.Marshal(detail)
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := h.eb.PutEvents(h.t.Context(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(bus), Source: aws.String(source), DetailType: aws.String(detailType), Detail: aws.String(string(raw)),
	}}})
	if err != nil {
		h.t.Fatal(err)
	}
	if out.FailedEntryCount != 0 {
		h.t.Fatalf("PutEvents %s/%s: %d failed", source, detailType, out.FailedEntryCount)
	}
}

// drain returns every message body in the rule's queue.
func (h *harness) drain(r rule) []string {
	h.t.Helper()
	var bodies []string
	for {
		out, err := h.sqs.ReceiveMessage(h.t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := h.sqs.DeleteMessage(h.t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

// TestTriggerRulesMatchTrustedEventsOnly sends the events the functions react to, from trusted and
// untrusted senders, and the CreateSecret calls replica-tls makes itself, through the template's own
// patterns (default parameter values).
func TestTriggerRulesMatchTrustedEventsOnly(t *testing.T) {
	d := loadDoc(t)
	res := d.resolver(nil)
	prefix := res.params["SecretPrefix"]
	trusted := strings.Split(res.params["AllowedEventSources"], ",")
	h := newHarness(t)
	trigger, awsBus := h.bus("trigger"), h.bus("default-stand-in") // moto's default bus is shared: stand in for it

	var rules []rule
	for _, fn := range d.functions() {
		for _, ev := range pairs(get(d.resources[fn], "Properties", "Events")) {
			if scalar(get(ev.value, "Type")) != "EventBridgeRule" {
				continue
			}
			pattern, err := res.value(get(ev.value, "Properties", "Pattern"))
			if err != nil {
				t.Fatalf("%s %s: %v", fn, ev.key, err)
			}
			bus := awsBus
			if get(ev.value, "Properties", "EventBusName") != nil {
				bus = trigger
			}
			rules = append(rules, h.rule(ev.key, bus, pattern, nil))
		}
	}

	cloudTrail := func(name, errorCode string) map[string]any {
		detail := map[string]any{
			"eventSource": "secretsmanager.amazonaws.com", "eventName": "CreateSecret",
			"requestParameters": map[string]any{"name": name},
		}
		if errorCode != "" {
			detail["errorCode"] = errorCode
		} else {
			detail["responseElements"] = map[string]any{"arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name + "-AbCdEf", "name": name}
		}
		return detail
	}
	cases := []struct {
		name, bus, source, detailType string
		detail                        map[string]any
		want                          string // the rule that must get it, "" for none
	}{
		{"replica created, trusted pipeline", trigger, trusted[0], "Replica Database Created", map[string]any{"destination": map[string]any{"cluster": "west", "database": 1}}, "ReplicaDatabaseCreated"},
		{"replica created, untrusted sender", trigger, "com.example.untrusted", "Replica Database Created", map[string]any{"destination": map[string]any{"cluster": "west", "database": 1}}, ""},
		{"replica created, posing as the audit trail", trigger, "replica-tls", "Replica Database Created", map[string]any{"destination": map[string]any{"cluster": "west", "database": 1}}, ""},
		{"cluster registered, trusted ops", trigger, trusted[len(trusted)-1], "Cluster Registered", map[string]any{"cluster": "east"}, "ClusterRegistered"},
		{"cluster registered, untrusted sender", trigger, "ops", "Cluster Registered", map[string]any{"cluster": "east"}, ""},
		{"sweep requested, trusted ops", trigger, trusted[len(trusted)-1], "Sweep Requested", map[string]any{"cluster": "west"}, "SweepRequested"},
		{"sweep requested, untrusted sender", trigger, "ops", "Sweep Requested", map[string]any{"cluster": "west"}, ""},
		{"API secret created", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"clusters/east/api", ""), "ApiSecretCreated"},
		{"API secret creation failed", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"clusters/east/api", "ResourceExistsException"), ""},
		{"syncer secret recorded by replica-tls", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"clusters/east/syncer", ""), ""},
		{"proxy secret recorded by replica-tls", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"clusters/east/proxy", ""), ""},
		{"policy secret written by replica-tls", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"databases/east/1/policy", ""), ""},
		{"API secret outside the prefix", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail("other/clusters/east/api", ""), ""},
		{"API secret with a longer name", awsBus, "aws.secretsmanager", "AWS API Call via CloudTrail", cloudTrail(prefix+"clusters/east/api-old", ""), ""},
		{"syncer certificate became current", awsBus, "aws.secretsmanager", "Secret Label Updated", map[string]any{"name": prefix + "clusters/east/syncer", "labelUpdated": "AWSCURRENT"}, "CertificateSecretLabelUpdated"},
		{"custom label moved", awsBus, "aws.secretsmanager", "Secret Label Updated", map[string]any{"name": prefix + "clusters/east/syncer", "labelUpdated": "MYLABEL"}, ""},
	}
	for _, c := range cases {
		c.detail["probe"] = c.name // names the case in whatever queue it lands
		h.put(c.bus, c.source, c.detailType, c.detail)
	}

	got, want := map[string][]string{}, map[string][]string{}
	for _, c := range cases {
		if c.want != "" {
			want[c.name] = []string{c.want}
		}
	}
	for _, r := range rules {
		for _, body := range h.drain(r) {
			var env struct {
				Detail struct {
					Probe string `json:"probe"`
				} `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("%s delivered %s: %v", r.name, body, err)
			}
			got[env.Detail.Probe] = append(got[env.Detail.Probe], r.name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("which rule got which event (-want +got):\n%s", diff)
	}
}

// TestNotificationsAreReadable publishes audit events (the real type, valid against the schema) on an
// audit bus with the template's notification rules and transformers, and reads what a person would
// get. moto limits what the events may hold: no double quote in a value (it does not escape them) and
// no "time" anywhere in the message (it then takes the text for an event).
func TestNotificationsAreReadable(t *testing.T) {
	d := loadDoc(t)
	res := d.resolver(nil)
	h := newHarness(t)
	bus := h.bus("audit")
	var rules []rule
	for _, id := range d.ofType("AWS::Events::Rule") {
		props := get(d.resources[id], "Properties")
		if !isRef(get(props, "EventBusName"), "AuditBus") {
			continue
		}
		pattern, err := res.value(get(props, "EventPattern"))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		targets := items(get(props, "Targets"))
		if len(targets) != 1 || !isRef(get(targets[0], "Arn"), topic) {
			t.Fatalf("%s: want one target, the notification topic", id)
		}
		rules = append(rules, h.rule(id, bus, pattern, transformer(t, res, get(targets[0], "InputTransformer"))))
	}
	if len(rules) == 0 {
		t.Fatal("no notification rules on the audit bus")
	}

	when := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	base := func(detailType, step string, o audit.Outcome) audit.Event {
		return audit.Event{SchemaVersion: audit.SchemaVersion, DetailType: detailType, ID: strings.Repeat("ab", 16), Time: when,
			Actor: "replica-tls-test", RunID: "run-42", Trigger: audit.Trigger{Kind: "schedule", EventID: "evt-7"}, Step: step, Outcome: o}
	}
	cert := &certs.Summary{Fingerprint: strings.Repeat("0f", 32), Subject: "CN=east.example.com,OU=syncer", NotAfter: when.Add(12 * 24 * time.Hour)}
	link := &audit.Link{SourceCluster: "east", SourceDatabase: 1, DestinationCluster: "west", DestinationDB: 2}

	expiring := base(audit.DetailExpiring, sweep.StepExpiry, audit.Succeeded)
	expiring.Cluster, expiring.Database, expiring.Certificate = "east", 1, cert
	expiring.Details = map[string]any{"stage": "14d", "threshold_days": 14, "days_left": 12, "expired": false, "kinds": []string{"syncer"}, "where": []string{"east"}}
	expiringDry := expiring
	expiringDry.Outcome, expiringDry.DryRun = audit.Planned, true

	repaired := base(audit.DetailDrift, sweep.StepDrift, audit.Succeeded)
	repaired.Cluster, repaired.Database, repaired.Link = "east", 1, link
	repaired.Details = map[string]any{"side": "source", "drift": []string{"tls_mode is disabled"}, "repaired": true}
	notRepaired := repaired
	notRepaired.Cluster, notRepaired.Database, notRepaired.Outcome = "west", 2, audit.Failed
	notRepaired.Details = map[string]any{"side": "destination", "drift": []string{"encryption is off"}, "repaired": false}
	notRepaired.Error = &audit.ErrorInfo{Code: "not_repaired", Message: "cluster west answered 503"}
	driftDry := repaired
	driftDry.Outcome, driftDry.DryRun = audit.Planned, true

	rotation := base(audit.DetailRotation, "rotation-verify-trust", audit.Failed)
	rotation.Cluster, rotation.Certificate = "west", cert
	rotation.Details = map[string]any{"rotation_step": "setSecret", "version_id": "0f4a5b1e-1c2d-4e3f-8a9b-0c1d2e3f4a5b", "kind": "syncer", "secret": "replica-tls/clusters/west/syncer"}
	rotation.Error = &audit.ErrorInfo{Code: "trust_not_verified", Message: "source east/1 does not list the pending certificate"}

	stepFailed := base("Replica TLS Step", "reconcile-source", audit.Failed)
	stepFailed.Cluster, stepFailed.Database, stepFailed.Link = "east", 1, link
	stepFailed.Error = &audit.ErrorInfo{Code: "busy", Message: "lease on east/1 held by another run"}
	rejected := base("Replica TLS Step", "decode-event", audit.Rejected)
	rejected.Trigger.Kind = "replica-database-created"
	rejected.Error = &audit.ErrorInfo{Code: "invalid_event", Message: "invalid event: source example.untrusted is not allowed"}
	succeeded := base("Replica TLS Step", "reconcile-source", audit.Succeeded)
	succeeded.Cluster, succeeded.Database = "east", 1
	sweepFailed := base(audit.DetailSweep, sweep.StepSweep, audit.Failed)
	sweepFailed.Error = &audit.ErrorInfo{Code: "no_cluster_readable", Message: "no registered cluster could be read"}

	cases := []struct {
		name  string
		event audit.Event
		rule  string   // "" = nobody is notified
		says  []string // what the message must contain
	}{
		{"certificate expiring", expiring, "ExpiryNotificationRule", []string{
			"a certificate expires soon", "Cluster: east (database 1)", "syncer CN=east.example.com,OU=syncer", strings.Repeat("0f", 32),
			"12 days left", "threshold 14 days", "2026-11-28T04:00:00Z", "run-42", "replica-tls/clusters/east/syncer", "What to do"}},
		{"certificate expiring, dry run", expiringDry, "", nil},
		{"drift repaired", repaired, "DriftNotificationRule", []string{
			"drift on cluster east, database 1", "source side of the link east/1 -> west/2", "Outcome: succeeded", "What to do"}},
		{"drift not repaired", notRepaired, "DriftNotificationRule", []string{
			"drift on cluster west, database 2", "destination side", "Outcome: failed", "not_repaired cluster west answered 503"}},
		{"drift, dry run", driftDry, "", nil},
		{"rotation failed", rotation, "RotationFailureNotificationRule", []string{
			"certificate rotation failed on cluster west (syncer certificate)", "Secret replica-tls/clusters/west/syncer",
			"step setSecret (rotation-verify-trust)", "trust_not_verified source east/1 does not list the pending certificate", "A stuck rotation"}},
		{"step failed", stepFailed, "FailureNotificationRule", []string{
			"Replica TLS Step, step reconcile-source failed on cluster east, database 1", "busy lease on east/1 held by another run",
			"Trigger: schedule (event evt-7), run run-42, dry run: ", "What to do"}},
		{"event rejected", rejected, "FailureNotificationRule", []string{
			"step decode-event rejected", "invalid_event invalid event: source example.untrusted is not allowed", "Trigger: replica-database-created"}},
		{"sweep failed", sweepFailed, "FailureNotificationRule", []string{"Sweep Summary, step sweep failed", "no_cluster_readable"}},
		{"step succeeded", succeeded, "", nil},
	}
	validator, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		detail, err := json.Marshal(c.event)
		if err != nil {
			t.Fatal(err)
		}
		if err := validator.Validate(detail); err != nil {
			t.Fatalf("%s: the test event is not a valid audit event: %v", c.name, err)
		}
		h.put(bus, audit.Source, c.event.DetailType, json.RawMessage(detail))
	}

	got := map[string][]string{} // rule -> messages
	for _, r := range rules {
		for _, body := range h.drain(r) {
			var msg string
			if err := json.Unmarshal([]byte(body), &msg); err != nil {
				t.Fatalf("%s delivered %s, not text: %v", r.name, body, err)
			}
			got[r.name] = append(got[r.name], msg)
		}
	}
	for _, c := range cases {
		if c.rule == "" {
			continue
		}
		i := slices.IndexFunc(got[c.rule], func(m string) bool { return strings.Contains(m, c.says[0]) })
		if i < 0 {
			t.Errorf("%s: %s sent nothing with %q; it sent %q", c.name, c.rule, c.says[0], got[c.rule])
			continue
		}
		msg := got[c.rule][i]
		got[c.rule] = slices.Delete(got[c.rule], i, i+1)
		for _, s := range c.says {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message lacks %q:\n%s", c.name, s, msg)
			}
		}
		// moto leaves the placeholder of a field the event lacks (EventBridge leaves it empty), and
		// writes booleans the Python way.
		if strings.Contains(msg, "<when>") || strings.Contains(msg, "<run>") || (c.event.Cluster != "" && strings.Contains(msg, "<cluster>")) {
			t.Errorf("%s: a placeholder was not filled in:\n%s", c.name, msg)
		}
		if strings.Contains(msg, "dry run: ") && !strings.Contains(strings.ToLower(msg), fmt.Sprintf("dry run: %v", c.event.DryRun)) {
			t.Errorf("%s: the message misstates the dry run:\n%s", c.name, msg)
		}
	}
	for r, left := range got {
		if len(left) > 0 {
			t.Errorf("%s also sent %d message(s) nobody should get: %q", r, len(left), left)
		}
	}
}

// transformer resolves a target's InputTransformer for moto.
func transformer(t *testing.T, res resolver, n *yaml.Node) *ebtypes.InputTransformer {
	t.Helper()
	paths, err := res.value(get(n, "InputPathsMap"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := res.value(get(n, "InputTemplate"))
	if err != nil {
		t.Fatal(err)
	}
	text, ok := tmpl.(string)
	if !ok || !strings.HasPrefix(text, `"`) || !strings.HasSuffix(text, `"`) {
		t.Fatalf("InputTemplate must be one quoted text, so that every placeholder is inside quotes: %v", tmpl)
	}
	m := map[string]string{}
	for k, v := range paths.(map[string]any) {
		m[k] = fmt.Sprint(v)
		if !strings.Contains(text, "<"+k+">") {
			t.Errorf("InputPathsMap %s is not used in the template", k)
		}
	}
	return &ebtypes.InputTransformer{InputPathsMap: m, InputTemplate: aws.String(text)}
}
