package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CheckValidity returns ErrExpired or ErrNotYetValid when now is outside [NotBefore, NotAfter]; both
// bounds are valid instants, as in x509.Verify.
func (c Cert) CheckValidity(now time.Time) error {
	if c.X509 == nil {
		return fmt.Errorf("check validity: no parsed certificate: %w", ErrMalformed)
	}
	switch {
	case now.After(c.X509.NotAfter):
		return fmt.Errorf("%s: %w: not after %s, now %s", c.name(), ErrExpired,
			c.X509.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.Before(c.X509.NotBefore):
		return fmt.Errorf("%s: %w: not before %s, now %s", c.name(), ErrNotYetValid,
			c.X509.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// ExpiresWithin reports whether the certificate's NotAfter is at or before now+d (also true when it has
// already expired).
func (c Cert) ExpiresWithin(now time.Time, d time.Duration) bool {
	if c.X509 == nil {
		return true
	}
	return !c.X509.NotAfter.After(now.Add(d))
}

// CheckUsage returns ErrUsage when the certificate lists extended key usages and neither usage nor
// ExtKeyUsageAny is among them. A certificate without the extension may be used for anything.
func (c Cert) CheckUsage(usage x509.ExtKeyUsage) error {
	if c.X509 == nil {
		return fmt.Errorf("check usage: no parsed certificate: %w", ErrMalformed)
	}
	if len(c.X509.ExtKeyUsage) == 0 && len(c.X509.UnknownExtKeyUsage) == 0 {
		return nil
	}
	for _, u := range c.X509.ExtKeyUsage {
		if u == usage || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	return fmt.Errorf("%s: %w: want %s", c.name(), ErrUsage, usageName(usage))
}

// name identifies the certificate in messages: subject and the first 16 hex digits of the fingerprint.
func (c Cert) name() string {
	fp := c.fingerprint()
	if len(fp) > 16 {
		fp = fp[:16]
	}
	subject := ""
	if c.X509 != nil {
		subject = c.X509.Subject.String()
	}
	return fmt.Sprintf("certificate %q (sha256 %s)", subject, fp)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageAny:
		return "any"
	}
	return fmt.Sprintf("extended key usage %d", int(u))
}

// CheckKeyPair checks that keyPEM holds the private key of the first certificate in certPEM (a chain is
// allowed, leaf first): ErrKeyMismatch when it is another key. Errors name what is wrong, never the
// content of either input.
func CheckKeyPair(certPEM, keyPEM string) error {
	cs, err := Parse(certPEM)
	if err != nil {
		return fmt.Errorf("check key pair: certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("check key pair: private key: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cs[0].X509.PublicKey) {
		return fmt.Errorf("check key pair: %s: %w", cs[0].name(), ErrKeyMismatch)
	}
	// The same check TLS servers run when loading the pair; its messages can quote block types from the
	// input, so report our own.
	if _, err := tls.X509KeyPair([]byte(Bundle(cs)), []byte(keyPEM)); err != nil {
		return fmt.Errorf("check key pair: %s: key rejected by crypto/tls", cs[0].name())
	}
	return nil
}

// parseKeyPEM reads exactly one unencrypted private key block, in the formats crypto/tls loads.
func parseKeyPEM(keyPEM string) (crypto.Signer, error) {
	text := strings.ReplaceAll(keyPEM, "\r\n", "\n")
	if strings.TrimSpace(text) == "" {
		return nil, ErrEmpty
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		if strings.Contains(text, pemBegin) {
			return nil, errors.New("bad PEM encoding")
		}
		return nil, ErrNoPEM
	}
	if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("PEM block 1 (%s) is not a private key", describeType(block.Type))
	}
	//lint:ignore SA1019 only detecting legacy encryption, to say why it is refused
	if block.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(block) {
		return nil, errors.New("encrypted keys are not supported")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("want exactly one PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		// Parser messages are generic, but this is key material: say nothing about its bytes.
		return nil, fmt.Errorf("%s block does not parse", describeType(block.Type))
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key algorithm %T", key)
	}
	return signer, nil
}
