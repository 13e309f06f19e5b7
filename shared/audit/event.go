// Package audit defines replica-tls's audit events: the record of every step, its versioned JSON
// Schema and validation against it. It does no I/O; a Sink (EventBridge in production) delivers events.
package audit

import (
	"context"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// SchemaVersion is the version of the committed JSON Schema every event conforms to.
const SchemaVersion = "1.0"

// Source is the EventBridge source of every audit event.
const Source = "replica-tls"

// Detail types (EventBridge detail-type) of audit events.
const (
	DetailStep       = "Replica TLS Step"
	DetailDrift      = "Drift Detected"
	DetailExpiring   = "Certificate Expiring"
	DetailSweep      = "Sweep Summary"
	DetailRotation   = "Certificate Rotation Step"
	DetailRegistered = "Cluster Certificates Recorded"
)

// Outcome of a step.
type Outcome string

// The outcomes of docs/architecture.md ("Audit events").
const (
	Started   Outcome = "started"
	Succeeded Outcome = "succeeded"
	Skipped   Outcome = "skipped"
	Failed    Outcome = "failed"
	Rejected  Outcome = "rejected"
	Planned   Outcome = "planned"
)

// Trigger names what started a run.
type Trigger struct {
	Kind    string `json:"kind"`               // e.g. "replica-database-created", "cluster-registered", "schedule"
	EventID string `json:"event_id,omitempty"` // the triggering event's id, when it has one
}

// Link names both ends of a Replica Of link.
type Link struct {
	SourceCluster      string `json:"source_cluster,omitempty"`
	SourceDatabase     int    `json:"source_database,omitempty"`
	DestinationCluster string `json:"destination_cluster,omitempty"`
	DestinationDB      int    `json:"destination_database,omitempty"`
}

// State is the security-relevant state of one side of a link, before or after a step.
// Certificates appear only as summaries (fingerprint, subject, expiry), never as PEM.
type State struct {
	TLSMode              string          `json:"tls_mode,omitempty"`
	ClientAuthentication string          `json:"client_authentication,omitempty"`
	TrustedCerts         []certs.Summary `json:"trusted_certs,omitempty"`
	Encryption           *bool           `json:"encryption,omitempty"`
	ServerCert           *certs.Summary  `json:"server_cert,omitempty"`
	LinkStatus           string          `json:"link_status,omitempty"`
}

// ErrorInfo is a failure's code and message; messages must never contain secret material.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Event is one audit record.
type Event struct {
	SchemaVersion string         `json:"schema_version"`
	DetailType    string         `json:"-"` // carried as the EventBridge detail-type
	ID            string         `json:"id"`
	Time          time.Time      `json:"time"`
	Actor         string         `json:"actor,omitempty"` // the function (or tool) that acted
	RunID         string         `json:"run_id"`
	Trigger       Trigger        `json:"trigger"`
	Step          string         `json:"step"`
	Outcome       Outcome        `json:"outcome"`
	Cluster       string         `json:"cluster,omitempty"`
	Database      int            `json:"database,omitempty"`
	Link          *Link          `json:"link,omitempty"`
	Before        *State         `json:"before,omitempty"`
	After         *State         `json:"after,omitempty"`
	Changes       []string       `json:"changes,omitempty"` // what was (or would be) changed, in words
	Certificate   *certs.Summary `json:"certificate,omitempty"`
	Details       map[string]any `json:"details,omitempty"` // step-specific figures (counts, thresholds)
	Error         *ErrorInfo     `json:"error,omitempty"`
	DryRun        bool           `json:"dry_run"`
	DurationMs    int64          `json:"duration_ms"`
}

// Sink delivers audit events. Publish returns nil only when every event was accepted: callers make a
// mutating cluster call only after its started event was published (audit fails closed).
type Sink interface {
	Publish(ctx context.Context, events ...Event) error
}
