package sweep

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/trigger"
)

// DetailRequested is the detail-type of an on-demand sweep sent through EventBridge.
const DetailRequested = "Sweep Requested"

// Trigger kinds of sweep runs, as audit events name them.
const (
	KindSchedule  = "schedule"        // EventBridge Scheduler (its Input carries execution_id)
	KindRequested = "sweep-requested" // a "Sweep Requested" EventBridge event
	KindInvoke    = "sweep-invoke"    // a bare payload without execution_id: a direct invoke
)

// Request is what a sweep is asked to do. The zero value sweeps every link of every registered
// cluster and changes what needs changing.
type Request struct {
	Cluster  string `json:"cluster,omitempty"`  // only links touching this cluster
	Database int    `json:"database,omitempty"` // only links touching this database of Cluster
	DryRun   bool   `json:"dry_run,omitempty"`  // validate and report; change nothing
	// ExecutionID is EventBridge Scheduler's <aws.scheduler.execution-id>, placed in the schedule's
	// Input so that audit events name the invocation.
	ExecutionID string `json:"execution_id,omitempty"`
}

// Scope says in words what the request covers.
func (r Request) Scope() string {
	switch {
	case r.Database > 0:
		return fmt.Sprintf("database %s/%d", r.Cluster, r.Database)
	case r.Cluster != "":
		return "cluster " + r.Cluster
	}
	return "fleet"
}

var executionID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ParseRequest decodes a sweep invocation: EventBridge Scheduler's bare Input, a direct invoke's
// bare JSON, or a "Sweep Requested" EventBridge envelope. Decoding is strict: unknown fields, wrong
// types and bad values are a *trigger.InvalidError naming the field, never echoing its value. The
// trigger says which of the three it was, for the audit trail.
func ParseRequest(payload []byte) (Request, audit.Trigger, error) {
	env, err := trigger.ParseEnvelope(payload)
	if err != nil {
		return Request{}, audit.Trigger{Kind: KindInvoke}, err
	}
	tr := audit.Trigger{Kind: KindRequested, EventID: env.ID}
	if env.Bare() {
		tr = audit.Trigger{Kind: KindInvoke}
	} else if env.DetailType != DetailRequested {
		return Request{}, tr, invalid("detail-type", "expected %q", DetailRequested)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(env.Detail))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, tr, invalid("detail", "%s", trigger.DescribeJSONError(err))
	}
	if dec.More() {
		return Request{}, tr, invalid("detail", "trailing data after the JSON object")
	}
	switch {
	case req.Cluster != "" && !trigger.ValidClusterName(req.Cluster):
		return Request{}, tr, invalid("cluster", "must be a registered cluster name (lowercase letters, digits, hyphens)")
	case req.Database < 0:
		return Request{}, tr, invalid("database", "must be a positive database uid")
	case req.Database > 0 && req.Cluster == "":
		return Request{}, tr, invalid("database", "needs cluster: a database uid is only unique within its cluster")
	case req.ExecutionID != "" && !executionID.MatchString(req.ExecutionID):
		return Request{}, tr, invalid("execution_id", "must be 1-128 letters, digits or ._:-")
	}
	if env.Bare() && req.ExecutionID != "" {
		tr = audit.Trigger{Kind: KindSchedule, EventID: req.ExecutionID}
	}
	return req, tr, nil
}

func invalid(field, format string, args ...any) error {
	return &trigger.InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
