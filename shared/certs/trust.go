package certs

import (
	"crypto/x509"
	"fmt"
	"time"
)

// IsCA reports whether the certificate may issue others: basicConstraints CA:TRUE and, when it has a
// key usage extension, keyCertSign. Redis Enterprise's own self-signed certificates (and Generate's)
// pass: see RoleOf for how a trust list tells them from CA certificates.
func IsCA(c Cert) bool {
	x := c.X509
	if x == nil || !x.BasicConstraintsValid || !x.IsCA {
		return false
	}
	return x.KeyUsage == 0 || x.KeyUsage&x509.KeyUsageCertSign != 0
}

// Role is what a certificate is in a trust list such as a database's authentication_ssl_client_certs.
type Role string

const (
	// RoleLeaf is an end-entity certificate, pinned: a client presenting it is accepted as it is.
	RoleLeaf Role = "leaf"
	// RoleIntermediate is a CA certificate issued by another CA.
	RoleIntermediate Role = "intermediate"
	// RoleRoot is a self-signed CA certificate.
	RoleRoot Role = "root"
)

// RoleOf classifies a certificate for a trust list. A certificate that is not a CA is a leaf; so is a
// self-signed CA that names hosts (DNS or IP SANs), which is what Redis Enterprise's install-time
// certificates and Generate's are: CA:TRUE by the letter, pinned in practice.
func RoleOf(c Cert) Role {
	switch {
	case !IsCA(c):
		return RoleLeaf
	case selfSigned(c) && (len(c.X509.DNSNames) > 0 || len(c.X509.IPAddresses) > 0):
		return RoleLeaf
	case selfSigned(c):
		return RoleRoot
	}
	return RoleIntermediate
}

// TrustEntry is one certificate of a trust list.
type TrustEntry struct {
	Index int // the list entry it came from, from 0
	Cert  Cert
	Role  Role
}

// TrustList is a parsed trust list: the PEM entries of a database's authentication_ssl_client_certs
// (leaves, intermediates or CA certificates; an entry may hold several certificates).
type TrustList struct {
	Entries    []TrustEntry
	Unreadable []int // indexes of list entries that hold no parseable certificate
}

// ReadTrustList parses every entry of a trust list. An entry that does not parse is listed in
// Unreadable, not an error: a live list may hold what this project did not write, and the rest can still
// be read.
func ReadTrustList(entries []string) TrustList {
	var t TrustList
	for i, e := range entries {
		cs, err := Parse(e)
		if err != nil {
			t.Unreadable = append(t.Unreadable, i)
			continue
		}
		for _, c := range cs {
			t.Entries = append(t.Entries, TrustEntry{Index: i, Cert: c, Role: RoleOf(c)})
		}
	}
	return t
}

// CAOnly reports whether the list holds CA certificates (roots or intermediates) and no leaf. Redis
// Enterprise: "If you include a leaf certificate, mutual client authentication skips any additional
// certificate validations", so adding a leaf to such a list turns off the subject validation its owner
// set up: a caller must not do it silently.
func (t TrustList) CAOnly() bool {
	cas := 0
	for _, e := range t.Entries {
		if e.Role == RoleLeaf {
			return false
		}
		cas++
	}
	return cas > 0
}

// TrustListCAOnly is ReadTrustList(entries).CAOnly().
func TrustListCAOnly(entries []string) bool {
	return ReadTrustList(entries).CAOnly()
}

// How a trust list covers a chain.
const (
	CoveredPinned = "pinned" // the list holds the chain's leaf itself
	CoveredByCA   = "ca"     // the chain verifies to a CA certificate of the list
)

// Coverage says whether a trust list already accepts a chain as a client certificate, and through which
// entry. Nothing in it is secret.
type Coverage struct {
	Covered bool     `json:"covered"`
	By      string   `json:"by,omitempty"`    // CoveredPinned or CoveredByCA
	Entry   *Summary `json:"entry,omitempty"` // the pinned leaf, or the trusted CA the chain verifies to
	Index   int      `json:"index"`           // that entry's position in the list; -1 when not covered
	Reason  string   `json:"reason,omitempty"`
}

// Covers reports whether the list accepts the chain as a client certificate at the given time: its leaf
// is pinned (an entry with the same fingerprint), or it verifies (x509.Verify for clientAuth, with the
// list's CA certificates as roots and the chain's issuers as intermediates). A pinned leaf wins, as it
// skips further validation in Redis Enterprise.
func (t TrustList) Covers(ch Chain, at time.Time) Coverage {
	leaf := ch.Leaf()
	if leaf.X509 == nil {
		return Coverage{Index: -1, Reason: "no certificate in the chain"}
	}
	for _, e := range t.Entries {
		if e.Cert.fingerprint() == leaf.fingerprint() {
			s := e.Cert.Summary()
			return Coverage{Covered: true, By: CoveredPinned, Entry: &s, Index: e.Index}
		}
	}
	roots := x509.NewCertPool()
	anchors := map[string]TrustEntry{}
	for _, e := range t.Entries {
		if e.Role != RoleLeaf {
			roots.AddCert(e.Cert.X509)
			anchors[e.Cert.fingerprint()] = e
		}
	}
	if len(anchors) == 0 {
		return Coverage{Index: -1, Reason: "the leaf is not pinned and the list holds no CA certificate"}
	}
	inter := x509.NewCertPool()
	for _, c := range ch.Issuers() {
		if c.X509 != nil {
			inter.AddCert(c.X509)
		}
	}
	chains, err := leaf.X509.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		// Verifier messages name certificates by subject and dates, never by body; still bound them.
		return Coverage{Index: -1, Reason: "the leaf is not pinned and does not verify to a CA of the list: " + clip(err.Error(), 300)}
	}
	for _, path := range chains {
		anchor := FromX509(path[len(path)-1])
		if e, ok := anchors[anchor.Fingerprint]; ok {
			s := e.Cert.Summary()
			return Coverage{Covered: true, By: CoveredByCA, Entry: &s, Index: e.Index}
		}
	}
	// Unreachable with a pool built only from anchors; said rather than assumed.
	return Coverage{Index: -1, Reason: "verified to a certificate outside the list"}
}

// CoversChain is ReadTrustList(entries).Covers(ch, at).
func CoversChain(entries []string, ch Chain, at time.Time) Coverage {
	return ReadTrustList(entries).Covers(ch, at)
}

// CheckAddLeaf returns an error when adding the chain's leaf to the list would put a leaf into a list of
// CA certificates only, which turns off the subject validation that list is there for (see CAOnly). The
// caller decides (and audits) whether to go on.
func (t TrustList) CheckAddLeaf(ch Chain) error {
	if !t.CAOnly() {
		return nil
	}
	return fmt.Errorf("adding %s to a trust list of CA certificates only would make Redis Enterprise skip further client certificate validation: %w",
		ch.Leaf().name(), ErrCAOnlyTrustList)
}
