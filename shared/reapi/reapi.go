// Package reapi holds the Redis Enterprise REST API data model that replica-tls reads and writes:
// databases (bdb), Replica Of source entries, the cluster object, actions and certificate updates,
// plus the typed API error. It does no I/O, so the pure reconciler can use it without pulling in HTTP.
package reapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TLSMode is a database's tls_mode.
type TLSMode string

// The documented tls_mode values.
const (
	TLSDisabled   TLSMode = "disabled"
	TLSReplicaSSL TLSMode = "replica_ssl" // TLS for Replica Of / Active-Active traffic only
	TLSEnabled    TLSMode = "enabled"     // TLS for every connection
)

// Rank orders modes from least to most TLS, so callers can refuse to downgrade.
// Unknown modes rank highest: we never claim to know better than a value we do not understand.
func (m TLSMode) Rank() int {
	switch m {
	case "", TLSDisabled:
		return 0
	case TLSReplicaSSL:
		return 1
	case TLSEnabled:
		return 2
	default:
		return 3
	}
}

// Enforce-client-authentication values.
const (
	Enabled  = "enabled"
	Disabled = "disabled"
)

// DB status values worth naming.
const (
	DBStatusActive        = "active"
	DBStatusChangePending = "active-change-pending"
)

// Replica Of link status values.
const (
	LinkInSync    = "in-sync"
	LinkSyncing   = "syncing"
	LinkOutOfSync = "out-of-sync"
)

// ClientCert is one entry of authentication_ssl_client_certs.
type ClientCert struct {
	ClientCert string `json:"client_cert"`
}

// Endpoint is one entry of a database's endpoints list.
type Endpoint struct {
	UID     string   `json:"uid,omitempty"`
	DNSName string   `json:"dns_name"`
	Port    int      `json:"port"`
	Addr    []string `json:"addr,omitempty"`
}

// DB is the subset of the bdb object replica-tls uses. Unknown fields are ignored on decode.
type DB struct {
	UID                          int             `json:"uid"`
	Name                         string          `json:"name,omitempty"`
	Status                       string          `json:"status,omitempty"`
	ActionUID                    string          `json:"action_uid,omitempty"`
	TLSMode                      TLSMode         `json:"tls_mode,omitempty"`
	EnforceClientAuthentication  string          `json:"enforce_client_authentication,omitempty"`
	AuthenticationSSLClientCerts []ClientCert    `json:"authentication_ssl_client_certs,omitempty"`
	ReplicaSources               []ReplicaSource `json:"replica_sources,omitempty"`
	ReplicaSync                  string          `json:"replica_sync,omitempty"`
	Endpoints                    []Endpoint      `json:"endpoints,omitempty"`
	// CRDT and CRDTGUID mark the local instance of an Active-Active database (bdb object: crdt,
	// crdt_guid); its syncer connections use the cluster's syncer certificate (crdb.go).
	CRDT     bool   `json:"crdt,omitempty"`
	CRDTGUID string `json:"crdt_guid,omitempty"`
}

// DBUpdate is the body of a partial PUT /v1/bdbs/{uid}: only non-nil fields are sent.
// Slices are pointers so that "send an empty list" and "do not send" stay distinct.
type DBUpdate struct {
	TLSMode                      *TLSMode         `json:"tls_mode,omitempty"`
	EnforceClientAuthentication  *string          `json:"enforce_client_authentication,omitempty"`
	AuthenticationSSLClientCerts *[]ClientCert    `json:"authentication_ssl_client_certs,omitempty"`
	ReplicaSources               *[]ReplicaSource `json:"replica_sources,omitempty"`
}

// Empty reports whether the update changes nothing.
func (u DBUpdate) Empty() bool {
	return u.TLSMode == nil && u.EnforceClientAuthentication == nil &&
		u.AuthenticationSSLClientCerts == nil && u.ReplicaSources == nil
}

// ReplicaSource is one replica_sources entry on a destination DB.
//
// The whole list is replaced by a PUT, so an entry must round-trip every field the cluster gave us,
// including ones this model does not know: Extra keeps them. Read-only status fields are decoded
// but never sent back (see MarshalJSON).
type ReplicaSource struct {
	UID               int    `json:"uid,omitempty"`
	URI               string `json:"uri"`
	Encryption        bool   `json:"encryption"`
	ServerCert        string `json:"server_cert,omitempty"`
	ClientCert        string `json:"client_cert,omitempty"`
	ClientKey         string `json:"client_key,omitempty"`
	ReplicationTLSSNI string `json:"replication_tls_sni,omitempty"`

	// Read-only, reported by the cluster.
	Status    string `json:"status,omitempty"`
	Lag       int64  `json:"lag,omitempty"`
	LastError string `json:"last_error,omitempty"`

	// Extra holds every other field of the entry exactly as received (compression, last_update, ...).
	Extra map[string]json.RawMessage `json:"-"`
}

// replicaSourceKnown lists the keys decoded into typed fields.
var replicaSourceKnown = map[string]bool{
	"uid": true, "uri": true, "encryption": true, "server_cert": true, "client_cert": true,
	"client_key": true, "replication_tls_sni": true, "status": true, "lag": true, "last_error": true,
}

// replicaSourceReadOnly lists keys the cluster reports about a running link; they are never sent back.
var replicaSourceReadOnly = map[string]bool{
	"status": true, "lag": true, "last_error": true, "last_update": true,
	"rdb_size": true, "rdb_transferred": true,
}

// UnmarshalJSON decodes the typed fields and keeps the rest in Extra.
func (r *ReplicaSource) UnmarshalJSON(b []byte) error {
	type plain ReplicaSource
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	// A fresh map sized for the unknown keys alone: the decoded one keeps room for every key, and a
	// fleet's list holds thousands of entries.
	unknown := 0
	for k := range all {
		if !replicaSourceKnown[k] {
			unknown++
		}
	}
	if unknown > 0 {
		p.Extra = make(map[string]json.RawMessage, unknown)
		for k, v := range all {
			if !replicaSourceKnown[k] {
				p.Extra[k] = v
			}
		}
	}
	*r = ReplicaSource(p)
	return nil
}

// MarshalJSON writes the writable fields plus Extra, leaving out read-only link status.
func (r ReplicaSource) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(r.Extra)+7)
	for k, v := range r.Extra {
		if !replicaSourceReadOnly[k] {
			out[k] = v
		}
	}
	if r.UID != 0 {
		out["uid"] = r.UID
	}
	out["uri"] = r.URI
	out["encryption"] = r.Encryption
	if r.ServerCert != "" {
		out["server_cert"] = r.ServerCert
	}
	if r.ClientCert != "" {
		out["client_cert"] = r.ClientCert
	}
	if r.ClientKey != "" {
		out["client_key"] = r.ClientKey
	}
	if r.ReplicationTLSSNI != "" {
		out["replication_tls_sni"] = r.ReplicationTLSSNI
	}
	return json.Marshal(out)
}

// Cluster is the subset of GET /v1/cluster replica-tls uses. Name is the cluster FQDN.
type Cluster struct {
	Name              string `json:"name"`
	ProxyCertificate  string `json:"proxy_certificate,omitempty"`
	SyncerCertificate string `json:"syncer_certificate,omitempty"`
}

// Certificate names accepted by the certificate update calls.
const (
	CertSyncer = "syncer"
	CertProxy  = "proxy"
)

// CertUpdate replaces one cluster certificate and its key.
type CertUpdate struct {
	Name        string `json:"name"`
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// String never prints the key.
func (c CertUpdate) String() string { return fmt.Sprintf("CertUpdate{name=%s}", c.Name) }

// Action is an asynchronous cluster action (GET /v1/actions/{uid}).
//
// A failed action tells why in one of three places, depending on its kind and version: error (state
// machines), error_code and error_message (tasks) or additional_info.error (v2 actions). FailureText
// reads them all.
type Action struct {
	ActionUID      string     `json:"action_uid"`
	Name           string     `json:"name,omitempty"`
	Status         string     `json:"status"`
	Progress       any        `json:"progress,omitempty"` // number or string across versions
	Error          string     `json:"error,omitempty"`
	ErrorCode      string     `json:"error_code,omitempty"`
	ErrorMessage   string     `json:"error_message,omitempty"`
	AdditionalInfo ActionInfo `json:"additional_info,omitzero"`
}

// ActionInfo is the part of an action's additional_info that replica-tls reads.
type ActionInfo struct {
	Error string `json:"error,omitempty"`
}

// Done reports whether the action reached a final state, and whether that state was success.
// Both the current (pending/active/completed/failed) and the older status vocabularies are accepted.
func (a Action) Done() (done, ok bool) {
	switch a.Status {
	case "completed":
		return true, true
	case "failed", "cancelled", "aborted":
		return true, false
	default:
		return false, false
	}
}

// FailureText is what the action says about its failure, from every field that may carry it, or ""
// when none does. The text comes from the server: scrub it before it reaches a log or an event.
func (a Action) FailureText() string {
	coded := a.ErrorMessage
	if a.ErrorCode != "" && coded != "" {
		coded = a.ErrorCode + ": " + coded
	} else if a.ErrorCode != "" {
		coded = a.ErrorCode
	}
	var parts []string
	for _, p := range []string{a.Error, coded, a.AdditionalInfo.Error} {
		if p != "" && !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

// Error is a failed API call: HTTP status, the body's error_code and its message (or description).
// It never carries request bodies or credentials.
type Error struct {
	Method     string
	Path       string // without query string
	StatusCode int
	Code       string // error_code, may be empty
	Message    string // message or description, may be empty
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Retryable reports whether the documented semantics allow trying the same call again:
// 409 (busy with another change) and 5xx. Validation and auth failures are final.
func (e *Error) Retryable() bool {
	return e.StatusCode == 409 || e.StatusCode >= 500
}

// Codes of failures the client names itself: no API error_code describes them.
const (
	// CodeUnreachable: no connection to the cluster's API could be made (refused, no such host,
	// the peer hung up or never finished the TLS handshake).
	CodeUnreachable = "unreachable"
	// CodeTimeout: the call's time budget ran out, waiting for an answer or between retries.
	CodeTimeout = "timeout"
	// CodePartiallyApplied: a certificate update answered 409 ("not all nodes have been updated")
	// until the client gave up: some nodes may present the new certificate, others the old one.
	CodePartiallyApplied = "partially_applied"
	// CodeResponseTooLarge: a response body passed the client's size cap.
	CodeResponseTooLarge = "response_too_large"
)

// Sentinels for errors.Is: a *CallError matches the one with its Code.
var (
	ErrUnreachable      = &CallError{Code: CodeUnreachable}
	ErrTimeout          = &CallError{Code: CodeTimeout}
	ErrPartiallyApplied = &CallError{Code: CodePartiallyApplied}
	ErrResponseTooLarge = &CallError{Code: CodeResponseTooLarge}
)

// CallError is a failed call the client classified itself, beyond (or without) an API error response.
// Err is the cause, which may wrap the last *Error the cluster answered and context.DeadlineExceeded.
// It never carries request bodies or credentials.
type CallError struct {
	Code    string // one of the Code* constants above
	Cluster string // the cluster's registry name
	Method  string
	Path    string // without query string
	Limit   int64  // CodeResponseTooLarge: the cap in bytes
	Err     error
}

func (e *CallError) Error() string {
	var what string
	switch e.Code {
	case CodeUnreachable:
		what = "cluster unreachable"
	case CodeTimeout:
		what = "call timed out"
	case CodePartiallyApplied:
		what = "partially applied (not all nodes have been updated)"
	case CodeResponseTooLarge:
		what = "response too large"
	default:
		what = e.Code
	}
	if e.Err == nil {
		return what
	}
	return what + ": " + e.Err.Error()
}

func (e *CallError) Unwrap() error { return e.Err }

// Is matches any *CallError with the same Code, so errors.Is(err, ErrTimeout) works.
func (e *CallError) Is(target error) bool {
	t, ok := target.(*CallError)
	return ok && t.Code == e.Code
}

// ErrorCode names a failure for metrics and audit events: a *CallError's Code, else the API's
// error_code, else "http_<status>"; "" when err holds neither.
func ErrorCode(err error) string {
	var callErr *CallError
	var apiErr *Error
	switch {
	case errors.As(err, &callErr):
		return callErr.Code
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return apiErr.Code
	case errors.As(err, &apiErr):
		return fmt.Sprintf("http_%d", apiErr.StatusCode)
	}
	return ""
}
