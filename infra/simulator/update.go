package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// dbUpdate is a validated PUT /v1/bdbs/{uid} body: nil fields were not sent.
type dbUpdate struct {
	TLSMode       *string
	Enforce       *string
	ClientCerts   *[]string
	CRDTCerts     *[]string
	AllowOutdated *bool
	Sources       *[]ReplicaSourceConfig // UID 0: a new link
}

// Writable database fields, in the order they are validated.
var dbWritable = []string{
	"tls_mode", "enforce_client_authentication", "authentication_ssl_client_certs",
	"authentication_ssl_crdt_certs", "mtls_allow_outdated_certs", "replica_sources",
}

// Keys of a replica_sources entry: writable ones, and read-only ones a client may echo back (ignored).
var (
	sourceWritable = map[string]bool{
		"uid": true, "uri": true, "encryption": true, "server_cert": true, "client_cert": true,
		"client_key": true, "replication_tls_sni": true, "compression": true,
	}
	sourceReadOnly = map[string]bool{
		"status": true, "lag": true, "last_error": true, "last_update": true,
		"rdb_size": true, "rdb_transferred": true,
	}
)

func badSchema(format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_schema", msg: fmt.Sprintf(format, a...)}
}

// decodeDBUpdate parses and validates a PUT body on its own (no database state needed); now is the
// clock for certificate expiry. Errors never quote certificates, keys or URIs.
func decodeDBUpdate(body []byte, now time.Time) (dbUpdate, *apiError) {
	var u dbUpdate
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return u, badSchema("request body is not a JSON object")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(dbWritable, k) {
			return u, badSchema("field %q is not supported in a database update", safeKey(k))
		}
	}
	for _, k := range dbWritable {
		raw, ok := m[k]
		if !ok {
			continue
		}
		var err *apiError
		switch k {
		case "tls_mode":
			u.TLSMode, err = decodeEnum(k, raw, "enabled", "disabled", "replica_ssl")
		case "enforce_client_authentication":
			u.Enforce, err = decodeEnum(k, raw, "enabled", "disabled")
		case "authentication_ssl_client_certs":
			u.ClientCerts, err = decodeCertList(k, raw, now)
		case "authentication_ssl_crdt_certs":
			u.CRDTCerts, err = decodeCertList(k, raw, now)
		case "mtls_allow_outdated_certs":
			var b bool
			if e := strict(raw, &b); e != nil {
				err = badSchema("%s must be a boolean", k)
			}
			u.AllowOutdated = &b
		case "replica_sources":
			u.Sources, err = decodeSources(raw, now)
		}
		if err != nil {
			return dbUpdate{}, err
		}
	}
	return u, nil
}

// strict decodes raw into v, refusing null (json.Unmarshal would silently keep v's zero value).
func strict(raw json.RawMessage, v any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return errors.New("null")
	}
	return json.Unmarshal(raw, v)
}

func decodeEnum(key string, raw json.RawMessage, allowed ...string) (*string, *apiError) {
	var s string
	if err := strict(raw, &s); err != nil || !slices.Contains(allowed, s) {
		return nil, badSchema("%s must be one of %s", key, strings.Join(allowed, ", "))
	}
	return &s, nil
}

// decodeCertList reads [{"client_cert": "<PEM>"}...]: each entry exactly one valid, unexpired certificate,
// no certificate twice.
func decodeCertList(key string, raw json.RawMessage, now time.Time) (*[]string, *apiError) {
	var entries []map[string]json.RawMessage
	if err := strict(raw, &entries); err != nil {
		return nil, badSchema("%s must be a list of {\"client_cert\": \"<PEM>\"} objects", key)
	}
	out := make([]string, 0, len(entries))
	seen := map[string]int{}
	for i, e := range entries {
		var pemText string
		if len(e) != 1 || strict(e["client_cert"], &pemText) != nil {
			return nil, badSchema("%s entry %d must be exactly {\"client_cert\": \"<PEM>\"}", key, i+1)
		}
		c, err := parseOneCert(pemText)
		if err != nil {
			return nil, &apiError{status: http.StatusBadRequest, code: "invalid_certificate",
				msg: fmt.Sprintf("%s entry %d: %v", key, i+1, err)}
		}
		if now.After(c.NotAfter) {
			return nil, &apiError{status: http.StatusNotAcceptable, code: "certificate_expired",
				msg: fmt.Sprintf("%s entry %d: certificate expired at %s", key, i+1, c.NotAfter.UTC().Format(time.RFC3339))}
		}
		fp := fingerprint(c)
		if j, dup := seen[fp]; dup {
			return nil, &apiError{status: http.StatusBadRequest, code: "duplicated_certs",
				msg: fmt.Sprintf("%s entries %d and %d are the same certificate", key, j, i+1)}
		}
		seen[fp] = i + 1
		out = append(out, pemText)
	}
	return &out, nil
}

func decodeSources(raw json.RawMessage, now time.Time) (*[]ReplicaSourceConfig, *apiError) {
	var entries []map[string]json.RawMessage
	if err := strict(raw, &entries); err != nil {
		return nil, badSchema("replica_sources must be a list of objects")
	}
	if len(entries) > maxReplicaSources {
		return nil, badSchema("replica_sources holds %d entries; at most %d are allowed", len(entries), maxReplicaSources)
	}
	out := make([]ReplicaSourceConfig, 0, len(entries))
	uids, endpoints := map[int]bool{}, map[string]bool{}
	for i, e := range entries {
		r, err := decodeSource(i+1, e, now)
		if err != nil {
			return nil, err
		}
		if r.UID != 0 {
			if uids[r.UID] {
				return nil, badSchema("replica_sources entry %d: uid %d listed twice", i+1, r.UID)
			}
			uids[r.UID] = true
		}
		ep := strings.ToLower(hostPort(r.URI))
		if endpoints[ep] {
			return nil, badSchema("replica_sources entry %d: the same source endpoint is listed twice", i+1)
		}
		endpoints[ep] = true
		out = append(out, r)
	}
	return &out, nil
}

func decodeSource(n int, e map[string]json.RawMessage, now time.Time) (ReplicaSourceConfig, *apiError) {
	var r ReplicaSourceConfig
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !sourceWritable[k] && !sourceReadOnly[k] {
			return r, badSchema("replica_sources entry %d: field %q is not supported", n, safeKey(k))
		}
	}
	str := func(k string, dst *string) *apiError {
		if raw, ok := e[k]; ok && strict(raw, dst) != nil {
			return badSchema("replica_sources entry %d: %s must be a string", n, k)
		}
		return nil
	}
	if raw, ok := e["uid"]; ok {
		if strict(raw, &r.UID) != nil || r.UID <= 0 {
			return r, badSchema("replica_sources entry %d: uid must be a positive integer", n)
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"uri", &r.URI}, {"server_cert", &r.ServerCert}, {"client_cert", &r.ClientCert},
		{"client_key", &r.ClientKey}, {"replication_tls_sni", &r.ReplicationTLSSNI},
	} {
		if err := str(f.key, f.dst); err != nil {
			return r, err
		}
	}
	if raw, ok := e["encryption"]; ok && strict(raw, &r.Encryption) != nil {
		return r, badSchema("replica_sources entry %d: encryption must be a boolean", n)
	}
	if raw, ok := e["compression"]; ok {
		if strict(raw, &r.Compression) != nil || r.Compression < 0 || r.Compression > 6 {
			return r, badSchema("replica_sources entry %d: compression must be an integer from 0 to 6", n)
		}
	}
	if err := checkSourceURI(r.URI); err != nil {
		return r, badSchema("replica_sources entry %d: uri %v", n, err)
	}
	badCert := func(format string, a ...any) *apiError {
		return &apiError{status: http.StatusBadRequest, code: "invalid_certificate",
			msg: fmt.Sprintf("replica_sources entry %d: ", n) + fmt.Sprintf(format, a...)}
	}
	if r.Encryption && r.ServerCert == "" {
		return r, badCert("encryption needs server_cert, the source proxy certificate")
	}
	if r.ServerCert != "" {
		c, err := parseOneCert(r.ServerCert)
		if err != nil {
			return r, badCert("server_cert: %v", err)
		}
		if now.After(c.NotAfter) {
			return r, &apiError{status: http.StatusNotAcceptable, code: "certificate_expired",
				msg: fmt.Sprintf("replica_sources entry %d: server_cert expired", n)}
		}
	}
	switch {
	case r.ClientCert == "" && r.ClientKey != "":
		return r, badCert("client_key without client_cert")
	case r.ClientCert != "":
		c, err := parseOneCert(r.ClientCert)
		if err != nil {
			return r, badCert("client_cert: %v", err)
		}
		if now.After(c.NotAfter) {
			return r, &apiError{status: http.StatusNotAcceptable, code: "certificate_expired",
				msg: fmt.Sprintf("replica_sources entry %d: client_cert expired", n)}
		}
		if r.ClientKey == "" {
			return r, badCert("client_cert needs client_key")
		}
		if err := checkKeyMatches(c, r.ClientKey); err != nil {
			return r, badCert("client_key: %v", err)
		}
	}
	return r, nil
}

// checkSourceURI accepts redis://[user[:password]@]host:port and nothing more. The error never
// repeats the URI: it holds a password.
func checkSourceURI(uri string) error {
	if uri == "" {
		return fmt.Errorf("is required")
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("does not parse")
	}
	if u.Scheme != "redis" {
		return fmt.Errorf("must start with redis://")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be redis://user:password@host:port without path or query")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return fmt.Errorf("must name a host and a port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port must be 1-65535")
	}
	return nil
}

// apply merges the update into cur. Entries with a uid must exist on the database; entries without
// one get the next uids. It returns the new configuration and the next free uid.
func (u dbUpdate) apply(cur DBConfig, nextUID int) (DBConfig, int, *apiError) {
	out := cur.clone()
	if u.TLSMode != nil {
		out.TLSMode = *u.TLSMode
	}
	if u.Enforce != nil {
		out.EnforceClientAuthentication = *u.Enforce
	}
	if u.ClientCerts != nil {
		out.AuthenticationSSLClientCerts = append([]string{}, *u.ClientCerts...)
	}
	if u.CRDTCerts != nil {
		out.AuthenticationSSLCRDTCerts = append([]string{}, *u.CRDTCerts...)
	}
	if u.AllowOutdated != nil {
		out.MTLSAllowOutdatedCerts = *u.AllowOutdated
	}
	if u.Sources != nil {
		out.ReplicaSources = make([]ReplicaSourceConfig, 0, len(*u.Sources))
		for i, r := range *u.Sources {
			if r.UID == 0 {
				r.UID = nextUID
				nextUID++
			} else if _, ok := cur.source(r.UID); !ok {
				return DBConfig{}, 0, badSchema("replica_sources entry %d: uid %d does not exist on this database", i+1, r.UID)
			}
			out.ReplicaSources = append(out.ReplicaSources, r)
		}
	}
	return out, nextUID, nil
}

// encode writes the update back as a request body (used to check that decoding is stable).
func (u dbUpdate) encode() []byte {
	m := map[string]any{}
	if u.TLSMode != nil {
		m["tls_mode"] = *u.TLSMode
	}
	if u.Enforce != nil {
		m["enforce_client_authentication"] = *u.Enforce
	}
	if u.ClientCerts != nil {
		m["authentication_ssl_client_certs"] = certObjects(*u.ClientCerts)
	}
	if u.CRDTCerts != nil {
		m["authentication_ssl_crdt_certs"] = certObjects(*u.CRDTCerts)
	}
	if u.AllowOutdated != nil {
		m["mtls_allow_outdated_certs"] = *u.AllowOutdated
	}
	if u.Sources != nil {
		l := make([]map[string]any, 0, len(*u.Sources))
		for _, r := range *u.Sources {
			l = append(l, sourceJSON(r))
		}
		m["replica_sources"] = l
	}
	b, _ := json.Marshal(m) // maps of strings, bools and ints always marshal
	return b
}

// sourceJSON is the writable part of an entry as the API shows it; empty optional strings are left out.
func sourceJSON(r ReplicaSourceConfig) map[string]any {
	m := map[string]any{"uri": r.URI, "encryption": r.Encryption, "compression": r.Compression}
	if r.UID != 0 {
		m["uid"] = r.UID
	}
	for k, v := range map[string]string{
		"server_cert": r.ServerCert, "client_cert": r.ClientCert, "client_key": r.ClientKey,
		"replication_tls_sni": r.ReplicationTLSSNI,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// safeKey shortens a caller-provided key for messages.
func safeKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "..."
	}
	return k
}

// hostPort is the host and port of a Replica Of URI, without credentials, for comparisons.
func hostPort(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), u.Port())
}
