// Package trigger decodes and validates the events that start replica-tls runs: the EventBridge
// envelope (or a bare payload from EventBridge Scheduler or a direct invoke) and the detail contracts
// "Replica Database Created" and "Cluster Registered". Decoding is strict: unknown fields, wrong types
// and out-of-range values are rejected with an *InvalidError naming the field, never echoing values
// that could hold secrets.
package trigger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Detail types of the events replica-tls consumes.
const (
	DetailReplicaCreated    = "Replica Database Created"
	DetailClusterRegistered = "Cluster Registered"
	DetailCloudTrail        = "AWS API Call via CloudTrail"
)

// MaxPayload bounds the size of an event we are willing to decode (EventBridge's own limit is 256 KB).
const MaxPayload = 256 * 1024

// InvalidError is a malformed or unacceptable event. Retrying it cannot succeed.
type InvalidError struct {
	Field  string // JSON path of the offending field, "" for the whole event
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return "invalid event: " + e.Reason
	}
	return fmt.Sprintf("invalid event: %s: %s", e.Field, e.Reason)
}

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Envelope is the part of an EventBridge event replica-tls uses.
type Envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Bare reports whether the payload came without an EventBridge envelope (Scheduler input, direct invoke).
func (e Envelope) Bare() bool { return e.DetailType == "" }

// ParseEnvelope accepts an EventBridge envelope, or a bare JSON object which becomes the Detail of an
// envelope with no detail-type.
func ParseEnvelope(payload []byte) (Envelope, error) {
	if len(payload) > MaxPayload {
		return Envelope{}, invalid("", "payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Envelope{}, invalid("", "payload must be a JSON object")
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return Envelope{}, invalid("", "payload is not valid JSON: %s", jsonErrorText(err))
	}
	_, hasDetail := probe["detail"]
	_, hasType := probe["detail-type"]
	if !hasDetail && !hasType {
		return Envelope{Detail: json.RawMessage(trimmed)}, nil
	}
	var env Envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return Envelope{}, invalid("", "EventBridge envelope: %s", jsonErrorText(err))
	}
	if env.DetailType == "" {
		return Envelope{}, invalid("detail-type", "missing")
	}
	if len(bytes.TrimSpace(env.Detail)) == 0 || bytes.Equal(bytes.TrimSpace(env.Detail), []byte("null")) {
		return Envelope{}, invalid("detail", "missing")
	}
	return env, nil
}

// Ref names one database on one registered cluster.
type Ref struct {
	Cluster  string `json:"cluster"`
	Database int    `json:"database"`
}

func (r Ref) String() string { return fmt.Sprintf("%s/%d", r.Cluster, r.Database) }

// Scope is the TLS scope a link's source database gets.
type Scope string

// TLS scopes: replica = tls_mode replica_ssl, all = tls_mode enabled.
const (
	ScopeReplica Scope = "replica"
	ScopeAll     Scope = "all"
)

// ParseScope validates a scope name.
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case ScopeReplica, ScopeAll:
		return Scope(s), nil
	}
	return "", invalid("tls_scope", "must be %q or %q", ScopeReplica, ScopeAll)
}

// ReplicaCreated is the detail of "Replica Database Created".
type ReplicaCreated struct {
	Destination          Ref   `json:"destination"`
	Source               *Ref  `json:"source,omitempty"` // optional: resolved from the destination's replica_sources
	TLSScope             Scope `json:"tls_scope,omitempty"`
	ClientAuthentication *bool `json:"client_authentication,omitempty"` // default true
	DryRun               bool  `json:"dry_run,omitempty"`
}

// ClusterRegistered is the detail of "Cluster Registered".
type ClusterRegistered struct {
	Cluster string `json:"cluster"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

// clusterNameRule is the registry name rule, as messages state it.
const clusterNameRule = "^[a-z0-9][a-z0-9-]{0,62}$"

// ValidClusterName reports whether s is an acceptable registry name for a cluster: clusterNameRule,
// checked by hand (the regular expression's compilation was most of the functions' own INIT work).
func ValidClusterName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

func checkRef(field string, r Ref) error {
	if !ValidClusterName(r.Cluster) {
		return invalid(field+".cluster", "must match %s", clusterNameRule)
	}
	if r.Database <= 0 {
		return invalid(field+".database", "must be a positive database uid")
	}
	return nil
}

// DecodeReplicaCreated validates an envelope as a "Replica Database Created" event. A bare payload is
// accepted as its detail. defaultScope applies when the event names none.
func DecodeReplicaCreated(env Envelope, defaultScope Scope) (ReplicaCreated, error) {
	if !env.Bare() && env.DetailType != DetailReplicaCreated {
		return ReplicaCreated{}, invalid("detail-type", "expected %q, got %q", DetailReplicaCreated, clip(env.DetailType))
	}
	var rc ReplicaCreated
	if err := strictDecode(env.Detail, &rc); err != nil {
		return ReplicaCreated{}, err
	}
	if err := checkRef("destination", rc.Destination); err != nil {
		return ReplicaCreated{}, err
	}
	if rc.Source != nil {
		if err := checkRef("source", *rc.Source); err != nil {
			return ReplicaCreated{}, err
		}
		if *rc.Source == rc.Destination {
			return ReplicaCreated{}, invalid("source", "a database cannot replicate from itself")
		}
	}
	if rc.TLSScope == "" {
		rc.TLSScope = defaultScope
	}
	if _, err := ParseScope(string(rc.TLSScope)); err != nil {
		return ReplicaCreated{}, err
	}
	if rc.ClientAuthentication == nil {
		t := true
		rc.ClientAuthentication = &t
	}
	return rc, nil
}

// cloudTrailDetail is the part of a CloudTrail-derived Secrets Manager event we read.
type cloudTrailDetail struct {
	EventSource       string `json:"eventSource"`
	EventName         string `json:"eventName"`
	RequestParameters struct {
		Name string `json:"name"`
	} `json:"requestParameters"`
}

// DecodeClusterRegistered validates a "Cluster Registered" event, or a CloudTrail CreateSecret event for
// a cluster's API secret (<prefix>clusters/<name>/api), which means the same.
func DecodeClusterRegistered(env Envelope, secretPrefix string) (ClusterRegistered, error) {
	if env.DetailType == DetailCloudTrail {
		var d cloudTrailDetail
		if err := json.Unmarshal(env.Detail, &d); err != nil {
			return ClusterRegistered{}, invalid("detail", "CloudTrail detail: %s", jsonErrorText(err))
		}
		if d.EventSource != "secretsmanager.amazonaws.com" || d.EventName != "CreateSecret" {
			return ClusterRegistered{}, invalid("detail.eventName", "only secretsmanager CreateSecret registers a cluster")
		}
		rest, ok := strings.CutPrefix(d.RequestParameters.Name, secretPrefix+"clusters/")
		name, isAPI := strings.CutSuffix(rest, "/api")
		if !ok || !isAPI || !ValidClusterName(name) {
			return ClusterRegistered{}, invalid("detail.requestParameters.name", "not a cluster API secret under %q", secretPrefix)
		}
		return ClusterRegistered{Cluster: name}, nil
	}
	if !env.Bare() && env.DetailType != DetailClusterRegistered {
		return ClusterRegistered{}, invalid("detail-type", "expected %q, got %q", DetailClusterRegistered, clip(env.DetailType))
	}
	var cr ClusterRegistered
	if err := strictDecode(env.Detail, &cr); err != nil {
		return ClusterRegistered{}, err
	}
	if !ValidClusterName(cr.Cluster) {
		return ClusterRegistered{}, invalid("cluster", "must match %s", clusterNameRule)
	}
	return cr, nil
}

func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("detail", "%s", jsonErrorText(err))
	}
	if dec.More() {
		return invalid("detail", "trailing data after the JSON object")
	}
	return nil
}

// DescribeJSONError describes a decoding error by position, field and type, never by the offending
// value: what an InvalidError may say about JSON that did not decode.
func DescribeJSONError(err error) string { return jsonErrorText(err) }

func jsonErrorText(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + clip(strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return "malformed JSON"
	}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
