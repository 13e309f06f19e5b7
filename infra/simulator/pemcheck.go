package simulator

// The simulator validates certificates with its own small, strict reader rather than package certs: it
// stands in for the server, and a second, independent reading of "what is one valid certificate" is what
// catches a client that trusts its own toolkit too much. Messages never quote the input.

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// pemBlocks splits text into PEM blocks, refusing anything but whitespace around them.
func pemBlocks(text string) ([]*pem.Block, error) {
	rest := []byte(text)
	var blocks []*pem.Block
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, errors.New("text outside PEM blocks")
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("malformed PEM block")
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM data")
	}
	return blocks, nil
}

// parseCertChain reads one or more CERTIFICATE blocks, leaf first, and nothing else.
func parseCertChain(text string) ([]*x509.Certificate, error) {
	blocks, err := pemBlocks(text)
	if err != nil {
		return nil, err
	}
	out := make([]*x509.Certificate, 0, len(blocks))
	for i, b := range blocks {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, not a CERTIFICATE", i+1, safeType(b.Type))
		}
		if len(b.Headers) > 0 {
			return nil, fmt.Errorf("PEM block %d has headers", i+1)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d is not a valid X.509 certificate", i+1)
		}
		out = append(out, c)
	}
	return out, nil
}

// parseOneCert reads exactly one certificate.
func parseOneCert(text string) (*x509.Certificate, error) {
	cs, err := parseCertChain(text)
	if err != nil {
		return nil, err
	}
	if len(cs) != 1 {
		return nil, fmt.Errorf("want exactly one certificate, found %d", len(cs))
	}
	return cs[0], nil
}

// parsePublicOfKey reads exactly one unencrypted private key (PKCS#8, SEC 1 or PKCS#1) and returns its
// public half. An "EC PARAMETERS" block, as openssl ecparam writes, is tolerated.
func parsePublicOfKey(text string) (crypto.PublicKey, error) {
	blocks, err := pemBlocks(text)
	if err != nil {
		return nil, err
	}
	var keys []*pem.Block
	for _, b := range blocks {
		if b.Type != "EC PARAMETERS" {
			keys = append(keys, b)
		}
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("want exactly one private key, found %d PEM blocks", len(keys))
	}
	b := keys[0]
	var key any
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, not an unencrypted private key", safeType(b.Type))
	}
	if err != nil {
		return nil, errors.New("private key does not parse")
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("unsupported private key type")
	}
	return s.Public(), nil
}

// checkKeyMatches reports whether keyPEM is the private key of c.
func checkKeyMatches(c *x509.Certificate, keyPEM string) error {
	pub, err := parsePublicOfKey(keyPEM)
	if err != nil {
		return err
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(c.PublicKey) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

// leafOf returns the first certificate in text, or nil when there is none (MutateDB may plant anything).
func leafOf(text string) *x509.Certificate {
	cs, err := parseCertChain(text)
	if err != nil {
		return nil
	}
	return cs[0]
}

// fingerprint is the lowercase hex SHA-256 of the DER.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// safeType keeps a PEM type printable and short: it comes from the caller.
func safeType(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
