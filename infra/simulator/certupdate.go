package simulator

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"
)

// certUpdate is one {"name","certificate","key"} of the certificate update calls.
type certUpdate struct {
	Name        string
	Certificate string
	Key         string
}

// Certificate names the update calls accept.
var certNames = []string{"api", "proxy", "syncer"}

// decodeCertUpdate reads the body of PUT /v1/cluster/update_cert.
func decodeCertUpdate(body []byte) (certUpdate, *apiError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return certUpdate{}, badSchema("request body is not a JSON object")
	}
	return certUpdateOf(m, "")
}

// decodeCertificates reads the body of PUT /v1/cluster/certificates: {"certificates": [...]}.
func decodeCertificates(body []byte) ([]certUpdate, *apiError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, badSchema("request body is not a JSON object")
	}
	for k := range m {
		if k != "certificates" {
			return nil, badSchema("field %q is not supported", safeKey(k))
		}
	}
	var entries []map[string]json.RawMessage
	if strict(m["certificates"], &entries) != nil || len(entries) == 0 {
		return nil, badSchema("certificates must be a non-empty list of {name, certificate, key} objects")
	}
	out := make([]certUpdate, 0, len(entries))
	names := map[string]bool{}
	for i, e := range entries {
		cu, err := certUpdateOf(e, fmt.Sprintf("certificates entry %d: ", i+1))
		if err != nil {
			return nil, err
		}
		if names[cu.Name] {
			return nil, badSchema("certificates entry %d: %s listed twice", i+1, cu.Name)
		}
		names[cu.Name] = true
		out = append(out, cu)
	}
	return out, nil
}

func certUpdateOf(m map[string]json.RawMessage, where string) (certUpdate, *apiError) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "name" && k != "certificate" && k != "key" {
			return certUpdate{}, badSchema("%sfield %q is not supported", where, safeKey(k))
		}
	}
	var cu certUpdate
	for _, f := range []struct {
		key string
		dst *string
	}{{"name", &cu.Name}, {"certificate", &cu.Certificate}, {"key", &cu.Key}} {
		if strict(m[f.key], f.dst) != nil || *f.dst == "" {
			return certUpdate{}, badSchema("%s%s is required and must be a string", where, f.key)
		}
	}
	if !slices.Contains(certNames, cu.Name) {
		return certUpdate{}, &apiError{status: http.StatusForbidden, code: "invalid_certificate_name",
			msg: fmt.Sprintf("%scertificate name %.40q cannot be set: want api, proxy or syncer", where, cu.Name)}
	}
	return cu, nil
}

// checkCertUpdate validates one update against the clock: the certificate (a chain, leaf first) must
// parse and be unexpired, and the key must be the leaf's.
func checkCertUpdate(cu certUpdate, now time.Time) (keyPair, *apiError) {
	chain, err := parseCertChain(cu.Certificate)
	if err != nil {
		return keyPair{}, &apiError{status: http.StatusBadRequest, code: "invalid_certificate",
			msg: fmt.Sprintf("%s certificate: %v", cu.Name, err)}
	}
	leaf := chain[0]
	if now.After(leaf.NotAfter) {
		return keyPair{}, &apiError{status: http.StatusNotAcceptable, code: "certificate_expired",
			msg: fmt.Sprintf("%s certificate expired at %s", cu.Name, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if err := checkKeyMatches(leaf, cu.Key); err != nil {
		return keyPair{}, &apiError{status: http.StatusBadRequest, code: "invalid_key",
			msg: fmt.Sprintf("%s key: %v", cu.Name, err)}
	}
	return keyPair{certPEM: cu.Certificate, keyPEM: cu.Key, leaf: leaf, fp: fingerprint(leaf)}, nil
}

// installCerts validates every update, then installs them all (or none). A new syncer certificate
// restarts the syncer, so every link whose destination is c reconnects presenting it; a new proxy
// certificate is served to new connections only.
func (s *Sim) installCerts(c *cluster, ups []certUpdate) *apiError {
	now := s.opts.Now()
	pairs := make([]keyPair, len(ups))
	for i, cu := range ups {
		kp, err := checkCertUpdate(cu, now)
		if err != nil {
			return err
		}
		if cu.Name == "api" {
			// The listener must be able to serve it: checked now so that nothing changes on failure.
			if _, err := tls.X509KeyPair([]byte(kp.certPEM), []byte(kp.keyPEM)); err != nil {
				return &apiError{status: http.StatusBadRequest, code: "invalid_key", msg: "api key: not usable for TLS"}
			}
		}
		pairs[i] = kp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	syncerChanged, certsChanged := false, false
	for i, cu := range ups {
		switch cu.Name {
		case "api":
			if err := c.setAPICert(pairs[i]); err != nil {
				s.log.Error("install API certificate", "cluster", c.spec.Name, "err", err) // checked above
			}
		case "proxy":
			c.proxy, certsChanged = pairs[i], true
		case "syncer":
			c.syncer, certsChanged, syncerChanged = pairs[i], true, true
		}
		s.log.Info("cluster certificate replaced", "cluster", c.spec.Name, "name", cu.Name, "sha256", pairs[i].fp)
	}
	// The restart first, so that the data plane call carrying the new certificates carries it too.
	if syncerChanged {
		s.syncerRestarted(c)
	}
	if certsChanged {
		s.notifyCerts(c)
		s.crdbsCertsChanged(c)
	}
	return nil
}
