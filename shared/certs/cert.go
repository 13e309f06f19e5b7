// Package certs is replica-tls's certificate toolkit: parsing and validating PEM certificates and
// chains (leaf to root, compared by their leaf), fingerprints and summaries for audit, de-duplication,
// whether a trust list already covers a chain (pinned leaf or trusted CA), and generating certificates
// with the profile of Redis Enterprise syncer and proxy certificates (RSA-3072 at least by default).
package certs

import (
	"crypto/x509"
	"time"
)

// Cert is one parsed X.509 certificate.
type Cert struct {
	X509        *x509.Certificate
	PEM         string // normalised: a single CERTIFICATE block, "\n" line endings, trailing newline
	Fingerprint string // lowercase hex SHA-256 of the DER
}

// Summary names a certificate without its body: what logs and audit events carry.
type Summary struct {
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
}
