package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. Every error this package returns names blocks by index and type only:
// it never echoes a PEM body, a DER byte or any key material, so it is safe to log and to audit.
var (
	// ErrEmpty: no PEM data at all (empty or whitespace only).
	ErrEmpty = errors.New("no PEM data")
	// ErrNoPEM: text is present but holds no PEM block.
	ErrNoPEM = errors.New("no PEM block found")
	// ErrPrivateKey: a private key block (any "... PRIVATE KEY" type, encrypted or not) where a
	// certificate belongs.
	ErrPrivateKey = errors.New("a private key where a certificate belongs")
	// ErrNotCertificate: a PEM block of another type (CSR, public key, CRL, ...).
	ErrNotCertificate = errors.New("not a certificate")
	// ErrMalformed: a CERTIFICATE block whose DER does not parse, a broken PEM block, or trailing
	// non-PEM data after the last block.
	ErrMalformed = errors.New("malformed certificate PEM")
	// ErrExpired: the certificate's NotAfter is before now.
	ErrExpired = errors.New("certificate expired")
	// ErrNotYetValid: the certificate's NotBefore is after now.
	ErrNotYetValid = errors.New("certificate not yet valid")
	// ErrUsage: the certificate has extended key usages and the required one is not among them.
	ErrUsage = errors.New("certificate lacks the required extended key usage")
	// ErrKeyMismatch: a private key that is not the key of the certificate.
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	// ErrChainOrder: a chain element that is not issued and signed by the next one (chains go leaf to
	// root).
	ErrChainOrder = errors.New("certificate chain out of order")
	// ErrNotCA: a certificate that issued another, or is asked to, without being allowed to: not a CA
	// (basicConstraints CA:FALSE, or a key usage without keyCertSign), or beyond its path length.
	ErrNotCA = errors.New("issuer is not a CA")
	// ErrDuplicate: the same certificate twice in one chain.
	ErrDuplicate = errors.New("certificate repeated in the chain")
	// ErrCAOnlyTrustList: a leaf about to be added to a trust list that holds only CA certificates.
	ErrCAOnlyTrustList = errors.New("trust list holds CA certificates only")
)

const (
	pemBegin  = "-----BEGIN "
	pemEnd    = "-----END "
	pemDashes = "-----"
	typeCert  = "CERTIFICATE"
)

// Parse reads one or more CERTIFICATE blocks.
//
// Accepted: "\n" or "\r\n" line endings, surrounding whitespace, and explanatory text before a block
// (RFC 7468 section 5.2; what `openssl pkcs12`, `openssl x509 -text` and `s_client -showcerts` print
// before each PEM block). Rejected: any non-CERTIFICATE block, a PEM block that does not decode (which
// pem.Decode alone would silently skip), a stray END line, and anything but whitespace after the last
// block, since that is usually a truncated paste.
func Parse(pemText string) ([]Cert, error) {
	text := strings.ReplaceAll(pemText, "\r\n", "\n")
	if strings.TrimSpace(text) == "" {
		return nil, ErrEmpty
	}
	if !strings.Contains(text, pemBegin) {
		if strings.Contains(text, pemEnd) {
			return nil, fmt.Errorf("END line without BEGIN line: %w", ErrMalformed)
		}
		return nil, ErrNoPEM
	}
	var out []Cert
	for index := 1; ; index++ {
		begin := strings.Index(text, pemBegin)
		if begin < 0 {
			if strings.TrimSpace(text) != "" {
				return nil, fmt.Errorf("data after PEM block %d: %w", index-1, ErrMalformed)
			}
			return out, nil
		}
		if strings.Contains(text[:begin], pemEnd) {
			return nil, fmt.Errorf("END line without BEGIN line before PEM block %d: %w", index, ErrMalformed)
		}
		text = text[begin:]
		blockType, ok := beginType(text)
		if !ok {
			return nil, fmt.Errorf("PEM block %d: unreadable BEGIN line: %w", index, ErrMalformed)
		}
		// Classify by the BEGIN line first, so a key block is reported as a key even when its body is
		// damaged, and never gets near an error message.
		if err := checkType(index, blockType); err != nil {
			return nil, err
		}
		end := strings.Index(text, pemEnd)
		// pem.Decode skips a block it cannot decode and returns the next one: make sure the segment
		// handed to it holds this block only, so a truncated block is reported instead of dropped.
		next := strings.Index(text[len(pemBegin):], pemBegin)
		if end < 0 || next >= 0 && next+len(pemBegin) < end {
			return nil, fmt.Errorf("PEM block %d (%s): no END line: %w", index, typeCert, ErrMalformed)
		}
		lineEnd := strings.IndexByte(text[end:], '\n')
		if lineEnd < 0 {
			lineEnd = len(text)
		} else {
			lineEnd += end + 1
		}
		block, rest := pem.Decode([]byte(text[:lineEnd]))
		if block == nil || block.Type != typeCert || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("PEM block %d (%s): bad PEM encoding: %w", index, typeCert, ErrMalformed)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			// x509 errors name the ASN.1 structure that failed; a few quote a name from the DER, so bound it.
			return nil, fmt.Errorf("PEM block %d (%s): %w: %s", index, typeCert, ErrMalformed, clip(err.Error(), 120))
		}
		out = append(out, FromX509(c))
		text = text[lineEnd:]
	}
}

// beginType returns TYPE from a leading "-----BEGIN TYPE-----" line.
func beginType(text string) (string, bool) {
	line := text[len(pemBegin):]
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	line = strings.TrimRight(line, " \t")
	if !strings.HasSuffix(line, pemDashes) {
		return "", false
	}
	return strings.TrimSuffix(line, pemDashes), true
}

// checkType rejects a block that is not a certificate, naming only its index and type.
func checkType(index int, blockType string) error {
	switch {
	case blockType == typeCert:
		return nil
	case isKeyType(blockType):
		return fmt.Errorf("PEM block %d (%s): %w", index, describeType(blockType), ErrPrivateKey)
	}
	return fmt.Errorf("PEM block %d (%s): %w", index, describeType(blockType), ErrNotCertificate)
}

func isKeyType(blockType string) bool {
	return strings.Contains(strings.ToUpper(blockType), "PRIVATE KEY")
}

// describeType quotes a block type for an error message. Private key types are put in lower case:
// secret scanners watching logs match the upper-case label.
func describeType(blockType string) string {
	if isKeyType(blockType) {
		blockType = strings.ToLower(blockType)
	}
	return safeLabel(blockType)
}

// safeLabel quotes a block type for an error message: it comes from the input, so keep it short.
func safeLabel(s string) string {
	return fmt.Sprintf("%q", clip(s, 40))
}

// clip bounds text from the input (or derived from it) before it goes into an error message: printable
// ASCII only, at most max bytes.
func clip(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ParseOne reads exactly one certificate.
func ParseOne(pemText string) (Cert, error) {
	cs, err := Parse(pemText)
	if err != nil {
		return Cert{}, err
	}
	if len(cs) != 1 {
		return Cert{}, fmt.Errorf("want exactly one certificate, found %d", len(cs))
	}
	return cs[0], nil
}

// FromX509 wraps a parsed certificate, filling PEM and Fingerprint. A nil certificate gives a zero Cert.
func FromX509(c *x509.Certificate) Cert {
	if c == nil {
		return Cert{}
	}
	return Cert{
		X509:        c,
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: typeCert, Bytes: c.Raw})),
		Fingerprint: Fingerprint(c.Raw),
	}
}

// Fingerprint is the lowercase hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Summary names the certificate without its body.
func (c Cert) Summary() Summary {
	s := Summary{Fingerprint: c.fingerprint()}
	if c.X509 != nil {
		s.Subject = c.X509.Subject.String()
		s.NotAfter = c.X509.NotAfter
	}
	return s
}

// Summaries summarises each certificate, in order.
func Summaries(cs []Cert) []Summary {
	out := make([]Summary, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Summary())
	}
	return out
}

// fingerprint tolerates a Cert built by hand with only X509 set.
func (c Cert) fingerprint() string {
	if c.Fingerprint == "" && c.X509 != nil {
		return Fingerprint(c.X509.Raw)
	}
	return c.Fingerprint
}

// Dedupe drops certificates whose fingerprint was already seen, keeping the first occurrence and the
// order.
func Dedupe(cs []Cert) []Cert {
	seen := make(map[string]bool, len(cs))
	out := make([]Cert, 0, len(cs))
	for _, c := range cs {
		fp := c.fingerprint()
		if seen[fp] {
			continue
		}
		seen[fp] = true
		out = append(out, c)
	}
	return out
}

// Bundle concatenates the certificates' PEM, in order.
func Bundle(cs []Cert) string {
	var b strings.Builder
	for _, c := range cs {
		if c.PEM == "" && c.X509 != nil {
			c = FromX509(c.X509)
		}
		b.WriteString(c.PEM)
	}
	return b.String()
}

// Normalize parses every block and re-encodes it, so equal certificates compare equal as text whatever
// their line endings, line lengths, headers or surrounding text.
func Normalize(pemText string) (string, error) {
	cs, err := Parse(pemText)
	if err != nil {
		return "", err
	}
	return Bundle(cs), nil
}

// SameCert reports whether a and b each hold exactly one certificate and it is the same one. Any parse
// error gives false.
func SameCert(a, b string) bool {
	ca, err := ParseOne(a)
	if err != nil {
		return false
	}
	cb, err := ParseOne(b)
	if err != nil {
		return false
	}
	return ca.Fingerprint == cb.Fingerprint
}
