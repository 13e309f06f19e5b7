package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Chain is a proxy or syncer certificate as Redis Enterprise holds a CA-issued one: the leaf first, then
// each element's issuer, up to the root (which may be left out). A self-signed certificate is a chain of
// one. Two chains are the same certificate when their leaves are: compare LeafFingerprint.
type Chain struct {
	Elements []Cert // leaf first; a Chain from ParseChain has at least one
}

// ChainSummary names a chain without any body: what logs and audit events carry. The embedded Summary
// is the leaf's, so its JSON has the same fingerprint, subject and not_after as a single certificate's.
type ChainSummary struct {
	Summary
	Issuer        string    `json:"issuer"`          // the leaf's issuer
	Elements      int       `json:"elements"`        // 1 for a self-signed certificate
	ChainNotAfter time.Time `json:"chain_not_after"` // the earliest NotAfter of every element
}

// ChainCheck is what Chain.Validate checks against.
type ChainCheck struct {
	Now time.Time // required: the injected clock every element's validity is checked at
	// Kind is the purpose: a proxy certificate needs serverAuth, a syncer certificate serverAuth and
	// clientAuth (it is the client of a Replica Of link and the server of Active-Active ones). Empty
	// checks no usage.
	Kind Kind
	// KeyPEM, when set, must be the leaf's private key.
	KeyPEM string
}

// ParseChain reads a PEM bundle as a chain, leaf first. It accepts what Parse accepts, explanatory text
// included (`openssl s_client -showcerts` prints a line or two before each block), and also rejects text
// between blocks that is binary or looks like base64 outside any armour: a block whose BEGIN line was
// damaged, which would silently drop an element. It reads only: Validate checks order, keys and dates.
func ParseChain(pemText string) (Chain, error) {
	cs, err := Parse(pemText)
	if err != nil {
		return Chain{}, fmt.Errorf("parse certificate chain: %w", err)
	}
	if err := checkBetweenBlocks(pemText); err != nil {
		return Chain{}, fmt.Errorf("parse certificate chain: %w", err)
	}
	return Chain{Elements: cs}, nil
}

// ValidateChain parses chainPEM and validates it for kind at now, with its key when keyPEM is set.
func ValidateChain(chainPEM, keyPEM string, kind Kind, now time.Time) (Chain, error) {
	ch, err := ParseChain(chainPEM)
	if err != nil {
		return Chain{}, err
	}
	if err := ch.Validate(ChainCheck{Now: now, Kind: kind, KeyPEM: keyPEM}); err != nil {
		return Chain{}, err
	}
	return ch, nil
}

// checkBetweenBlocks looks at the text outside PEM blocks, which Parse has already found well formed.
func checkBetweenBlocks(text string) error {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	inside, blocks := false, 0
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, pemBegin):
			inside = true
			continue
		case strings.HasPrefix(line, pemEnd):
			inside, blocks = false, blocks+1
			continue
		case inside:
			continue
		}
		where := fmt.Sprintf("between PEM blocks %d and %d", blocks, blocks+1)
		if blocks == 0 {
			where = "before PEM block 1"
		}
		if !utf8.ValidString(line) || strings.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
			return fmt.Errorf("binary data %s: %w", where, ErrMalformed)
		}
		if looksBase64(strings.TrimSpace(line)) {
			return fmt.Errorf("base64 data outside any PEM block %s (a block with a damaged BEGIN line?): %w", where, ErrMalformed)
		}
	}
	return nil
}

// looksBase64 reports whether a line could be a PEM body line: 40 or more characters of the base64
// alphabet only. Explanatory text (subject lines, `openssl x509 -text` output) has spaces, colons,
// commas or dots.
func looksBase64(line string) bool {
	if len(line) < 40 {
		return false
	}
	for _, r := range line {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=') {
			return false
		}
	}
	return true
}

// Leaf is the first element: the certificate the chain is for. A zero Cert for an empty chain.
func (ch Chain) Leaf() Cert {
	if len(ch.Elements) == 0 {
		return Cert{}
	}
	return ch.Elements[0]
}

// LeafFingerprint is the leaf's SHA-256 fingerprint: what chains are compared by.
func (ch Chain) LeafFingerprint() string {
	return ch.Leaf().fingerprint()
}

// Issuers are the elements after the leaf, root included when present.
func (ch Chain) Issuers() []Cert {
	if len(ch.Elements) < 2 {
		return nil
	}
	return ch.Elements[1:]
}

// Intermediates are the elements between the leaf and the root: the issuers less a last self-signed
// one.
func (ch Chain) Intermediates() []Cert {
	issuers := ch.Issuers()
	if _, ok := ch.Root(); ok {
		issuers = issuers[:len(issuers)-1]
	}
	return issuers
}

// Root is the last element when the chain has more than one and the last is self-signed; false when the
// chain stops at an intermediate (the root left to the verifier's trust store) or is a single
// certificate.
func (ch Chain) Root() (Cert, bool) {
	if len(ch.Elements) < 2 {
		return Cert{}, false
	}
	last := ch.Elements[len(ch.Elements)-1]
	if !selfSigned(last) {
		return Cert{}, false
	}
	return last, true
}

// PEM is the chain as one bundle, leaf first, each block normalised.
func (ch Chain) PEM() string {
	return Bundle(ch.Elements)
}

// SameLeaf reports whether two chains are the same certificate: their leaves are.
func (ch Chain) SameLeaf(other Chain) bool {
	return len(ch.Elements) > 0 && len(other.Elements) > 0 && ch.LeafFingerprint() == other.LeafFingerprint()
}

// SameLeaf reports whether a and b are chains (or single certificates) with the same leaf. Any parse
// error gives false. It is SameCert for chains.
func SameLeaf(a, b string) bool {
	ca, err := ParseChain(a)
	if err != nil {
		return false
	}
	cb, err := ParseChain(b)
	if err != nil {
		return false
	}
	return ca.SameLeaf(cb)
}

// Summary names the chain without any body.
func (ch Chain) Summary() ChainSummary {
	leaf := ch.Leaf()
	s := ChainSummary{Summary: leaf.Summary(), Elements: len(ch.Elements)}
	if leaf.X509 != nil {
		s.Issuer = leaf.X509.Issuer.String()
	}
	for _, c := range ch.Elements {
		if c.X509 != nil && (s.ChainNotAfter.IsZero() || c.X509.NotAfter.Before(s.ChainNotAfter)) {
			s.ChainNotAfter = c.X509.NotAfter
		}
	}
	return s
}

// Validate checks the chain for its purpose and reports every problem found, each naming the element
// (position, role, subject, fingerprint prefix) and wrapping a sentinel: ErrChainOrder when an element is
// not issued and signed by the next one, ErrNotCA when the issuer may not issue, ErrDuplicate,
// ErrExpired or ErrNotYetValid for any element at chk.Now, ErrUsage when the leaf (or an issuer that
// restricts its usages) does not allow the kind's usages, ErrKeyMismatch when chk.KeyPEM is not the
// leaf's key. A chain that stops before its root is fine: the root is the verifier's to hold.
func (ch Chain) Validate(chk ChainCheck) error {
	if len(ch.Elements) == 0 {
		return fmt.Errorf("validate certificate chain: %w", ErrEmpty)
	}
	if chk.Now.IsZero() {
		return errors.New("validate certificate chain: the time to check at is required")
	}
	var usages []x509.ExtKeyUsage
	switch chk.Kind {
	case "":
	case KindProxy:
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case KindSyncer:
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	default:
		return fmt.Errorf("validate certificate chain: kind %q: want %q or %q", clip(string(chk.Kind), 40), KindSyncer, KindProxy)
	}
	for i, c := range ch.Elements {
		if c.X509 == nil {
			return fmt.Errorf("validate certificate chain: %s: no parsed certificate: %w", ch.elementName(i), ErrMalformed)
		}
	}

	var errs []error
	add := func(i int, err error) {
		errs = append(errs, fmt.Errorf("%s: %w", ch.elementName(i), err))
	}
	seen := make(map[string]int, len(ch.Elements))
	for i, c := range ch.Elements {
		if j, dup := seen[c.fingerprint()]; dup {
			add(i, fmt.Errorf("%w: the same as element %d", ErrDuplicate, j+1))
		} else {
			seen[c.fingerprint()] = i
		}
		if err := c.checkValidityAt(chk.Now); err != nil {
			add(i, err)
		}
		for _, u := range usages {
			if err := c.allowsUsage(u); err != nil {
				add(i, err)
			}
		}
		if i+1 < len(ch.Elements) {
			if err := ch.checkIssuedBy(i); err != nil {
				add(i, err)
			}
		}
	}
	if chk.KeyPEM != "" {
		if err := CheckKeyPair(ch.Leaf().PEM, chk.KeyPEM); err != nil {
			// CheckKeyPair names the leaf already, and never the key.
			errs = append(errs, fmt.Errorf("chain element 1 (leaf): %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid certificate chain of %d: %w", len(ch.Elements), errors.Join(errs...))
	}
	return nil
}

// checkValidityAt is CheckValidity without the certificate's name, which the chain element name gives.
func (c Cert) checkValidityAt(now time.Time) error {
	switch {
	case now.After(c.X509.NotAfter):
		return fmt.Errorf("%w: not after %s, now %s", ErrExpired,
			c.X509.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Before(c.X509.NotBefore):
		return fmt.Errorf("%w: not before %s, now %s", ErrNotYetValid,
			c.X509.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// allowsUsage is CheckUsage without the certificate's name. On an issuer an extended key usage list
// restricts what it may issue for, as Go's and OpenSSL's verifiers apply it.
func (c Cert) allowsUsage(u x509.ExtKeyUsage) error {
	if c.CheckUsage(u) != nil {
		return fmt.Errorf("%w: want %s", ErrUsage, usageName(u))
	}
	return nil
}

// checkIssuedBy checks that element i is issued and signed by element i+1, and that this one may issue.
func (ch Chain) checkIssuedBy(i int) error {
	child, parent := ch.Elements[i].X509, ch.Elements[i+1].X509
	next := fmt.Sprintf("element %d %q", i+2, clip(parent.Subject.String(), 120))
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		hint := ""
		if i == 0 && len(ch.Elements) > 1 && selfSigned(ch.Elements[0]) {
			hint = "; it is self-signed: is the chain root first? List it leaf to root"
		}
		return fmt.Errorf("%w: issued by %q, not by %s%s", ErrChainOrder, clip(child.Issuer.String(), 120), next, hint)
	}
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 && !bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId) {
		return fmt.Errorf("%w: its authority key identifier is not the key identifier of %s (another CA with the same name)", ErrChainOrder, next)
	}
	if err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature); err != nil {
		return fmt.Errorf("%w: its signature does not verify with the key of %s", ErrChainOrder, next)
	}
	if !IsCA(ch.Elements[i+1]) {
		return fmt.Errorf("%w: %s signed it but is not a CA (%s)", ErrNotCA, next, notCAReason(parent))
	}
	// Path length: how many CA certificates may follow the issuer towards the leaf.
	below := i // elements 1..i are intermediates between the issuer and the leaf
	if parent.MaxPathLen >= 0 && (parent.MaxPathLen > 0 || parent.MaxPathLenZero) && below > parent.MaxPathLen {
		return fmt.Errorf("%w: %s allows %d CA certificates below it, the chain has %d", ErrNotCA, next, parent.MaxPathLen, below)
	}
	return nil
}

func notCAReason(x *x509.Certificate) string {
	if !x.BasicConstraintsValid || !x.IsCA {
		return "basicConstraints CA:FALSE or absent"
	}
	return "its key usage lacks keyCertSign"
}

// elementName names chain element i (from 1 in messages) with its role.
func (ch Chain) elementName(i int) string {
	role := "intermediate"
	switch {
	case i == 0:
		role = "leaf"
	case i == len(ch.Elements)-1 && selfSigned(ch.Elements[i]):
		role = "root"
	}
	return fmt.Sprintf("chain element %d (%s) %s", i+1, role, ch.Elements[i].name())
}

// selfSigned reports whether the certificate names itself as issuer and its signature verifies with its
// own key.
func selfSigned(c Cert) bool {
	x := c.X509
	if x == nil || !bytes.Equal(x.RawIssuer, x.RawSubject) {
		return false
	}
	return x.CheckSignature(x.SignatureAlgorithm, x.RawTBSCertificate, x.Signature) == nil
}
