// Package reapi holds the Redis Enterprise REST API data model that replica-tls reads and writes:
// databases (bdb), Replica Of source entries, the cluster object, actions and certificate updates,
// plus the typed API error. It does no I/O, so the pure reconciler can use it without pulling in HTTP.
package reapi

import (
	"encoding/json"
	"fmt"
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
	for k := range all {
		if replicaSourceKnown[k] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		all = nil
	}
	p.Extra = all
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
type Action struct {
	ActionUID string `json:"action_uid"`
	Name      string `json:"name,omitempty"`
	Status    string `json:"status"`
	Progress  any    `json:"progress,omitempty"` // number or string across versions
	Error     string `json:"error,omitempty"`
}

// Done reports whether the action reached a final state, and whether that state was success.
// Both the current (pending/active/completed/failed) and the older status vocabularies are accepted.
func (a Action) Done() (done, ok bool) {
	switch a.Status {
	case "completed":
		return true, true
	case "failed", "cancelled":
		return true, false
	default:
		return false, false
	}
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
