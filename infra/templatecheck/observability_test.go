package templatecheck

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const topic = "NotificationTopic"

// TestEveryAlarmNotifies: an alarm nobody hears about is no alarm. Each says what happened and what to
// do, and notifies the topic when it goes off and when it clears.
func TestEveryAlarmNotifies(t *testing.T) {
	d := loadDoc(t)
	if scalar(get(d.resources[topic], "Type")) != "AWS::SNS::Topic" {
		t.Fatalf("no AWS::SNS::Topic %s", topic)
	}
	alarms := d.ofType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("no alarms")
	}
	for _, id := range alarms {
		t.Run(id, func(t *testing.T) {
			props := get(d.resources[id], "Properties")
			desc := get(props, "AlarmDescription")
			if fn, arg := intrinsic(desc); fn == "Sub" {
				desc = arg
			}
			if text := scalar(desc); len(text) < 60 || !strings.HasPrefix(text, "replica-tls: ") {
				t.Errorf("AlarmDescription %q: say \"replica-tls: \", what happened and what to do", text)
			}
			for _, list := range []string{"AlarmActions", "OKActions"} {
				if !slices.ContainsFunc(items(get(props, list)), func(n *yaml.Node) bool { return isRef(n, topic) }) {
					t.Errorf("%s does not notify !Ref %s", list, topic)
				}
			}
		})
	}
}

// TestTheAlarmsCoverWhatOperatorsNeed: the failed-events queue, every function's errors and
// throttles, and the custom metrics of the sweep, certificate expiry and rotation.
func TestTheAlarmsCoverWhatOperatorsNeed(t *testing.T) {
	d := loadDoc(t)
	type watched struct{ namespace, metric, dimension, value string }
	have := map[watched]string{}
	for _, id := range d.ofType("AWS::CloudWatch::Alarm") {
		props := get(d.resources[id], "Properties")
		ns := scalar(get(props, "Namespace"))
		if isRef(get(props, "Namespace"), "MetricsNamespace") {
			ns = "custom"
		}
		for _, dim := range items(get(props, "Dimensions")) {
			v := get(dim, "Value")
			value := scalar(v)
			if fn, _ := intrinsic(v); fn != "" && len(references(v)) == 1 {
				value = references(v)[0] // the resource or parameter it names
			}
			have[watched{ns, scalar(get(props, "MetricName")), scalar(get(dim, "Name")), value}] = id
		}
	}
	want := []watched{
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "FailedEventsQueue"},
		{"custom", "SweepCompleted", "service", "replica-tls"},
		{"custom", "CertificateDaysToExpiry", "service", "replica-tls"},
		{"custom", "RotationFailed", "service", "replica-tls"},
	}
	for _, fn := range d.functions() {
		want = append(want, watched{"AWS/Lambda", "Errors", "FunctionName", fn}, watched{"AWS/Lambda", "Throttles", "FunctionName", fn})
	}
	for _, w := range want {
		if _, ok := have[w]; !ok {
			t.Errorf("no alarm on %s %s (%s=%s)", w.namespace, w.metric, w.dimension, w.value)
		}
	}
	sweep := get(d.resources[have[watched{"custom", "SweepCompleted", "service", "replica-tls"}]], "Properties")
	if scalar(get(sweep, "TreatMissingData")) != "breaching" {
		t.Error("the sweep alarm must treat missing data as breaching: no SweepCompleted metric is exactly the failure")
	}
}

// TestEveryFunctionHasALogGroup: Lambda would create /aws/lambda/<function> on first write, with no
// retention and outside the stack; each function gets it from the template instead, and writes JSON
// that Lambda filters at the configured level.
func TestEveryFunctionHasALogGroup(t *testing.T) {
	d := loadDoc(t)
	groups := map[string]string{} // function -> log group
	for _, id := range d.ofType("AWS::Logs::LogGroup") {
		props := get(d.resources[id], "Properties")
		fn, arg := intrinsic(get(props, "LogGroupName"))
		name := scalar(arg)
		if fn != "Sub" || !strings.HasPrefix(name, "/aws/lambda/${") || !strings.HasSuffix(name, "}") {
			t.Errorf("%s: LogGroupName must be !Sub /aws/lambda/${<Function>}, got %q", id, name)
			continue
		}
		groups[strings.TrimSuffix(strings.TrimPrefix(name, "/aws/lambda/${"), "}")] = id
		if !isRef(get(props, "RetentionInDays"), "LogRetentionDays") {
			t.Errorf("%s: RetentionInDays must be !Ref LogRetentionDays", id)
		}
	}
	for _, fn := range d.functions() {
		if groups[fn] == "" {
			t.Errorf("%s has no log group /aws/lambda/${%s}", fn, fn)
		}
		if get(d.resources[fn], "Properties", "LoggingConfig", "LogGroup") != nil {
			t.Errorf("%s: LoggingConfig.LogGroup would send its logs away from its /aws/lambda group", fn)
		}
	}
	if def, ok := d.paramDefault("LogRetentionDays"); !ok || def == "" {
		t.Error("parameter LogRetentionDays needs a default")
	}
	logging := get(d.globals, "LoggingConfig")
	if scalar(get(logging, "LogFormat")) != "JSON" {
		t.Error("Globals LoggingConfig.LogFormat must be JSON")
	}
	if !slices.Contains(references(get(logging, "ApplicationLogLevel")), "LogLevel") {
		t.Error("Globals LoggingConfig.ApplicationLogLevel must follow the LogLevel parameter")
	}
}

// TestEveryFunctionGetsItsSettings: the environment every function's code reads, from the parameters.
func TestEveryFunctionGetsItsSettings(t *testing.T) {
	d := loadDoc(t)
	env := get(d.globals, "Environment", "Variables")
	for name, from := range map[string]string{
		"LEASE_TABLE_NAME":             "LeaseTable",
		"ALLOWED_EVENT_SOURCES":        "AllowedEventSources",
		"ALLOW_POLICY_DOWNGRADE":       "AllowPolicyDowngrade",
		"POWERTOOLS_METRICS_NAMESPACE": "MetricsNamespace",
		"AUDIT_BUS_NAME":               "AuditBus",
		"SECRETS_KMS_KEY_ARN":          "SecretsKmsKeyArn",
	} {
		if !isRef(get(env, name), from) {
			t.Errorf("Globals environment %s must be !Ref %s", name, from)
		}
	}
	if scalar(get(env, "POWERTOOLS_SERVICE_NAME")) != "replica-tls" {
		t.Error("Globals environment POWERTOOLS_SERVICE_NAME must be replica-tls (the metrics' service dimension)")
	}
	if v := get(env, "AWS_ENDPOINT_URL"); v != nil && scalar(v) != "" {
		t.Errorf("Globals environment AWS_ENDPOINT_URL must stay empty in AWS, not %q", scalar(v))
	}
	if def, _ := d.paramDefault("AllowPolicyDowngrade"); def != "false" {
		t.Errorf("AllowPolicyDowngrade defaults to %q, want \"false\"", def)
	}
	for _, fn := range d.functions() {
		for _, name := range []string{"LEASE_TABLE_NAME", "ALLOWED_EVENT_SOURCES", "ALLOW_POLICY_DOWNGRADE"} {
			if get(d.resources[fn], "Properties", "Environment", "Variables", name) != nil {
				t.Errorf("%s overrides %s: every function must share the stack's value", fn, name)
			}
		}
	}
}
