package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// t0 is the injected clock of these tests: a fixed instant, so nothing depends on when they run.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newCert issues a self-signed ECDSA certificate (CN=test.example.com, valid t0 to t0+24h) after
// applying mods to the template.
func newCert(t testing.TB, mods ...func(*x509.Certificate)) (Cert, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return newCertWithKey(t, key, mods...), key
}

// newCertWithKey is newCert with a given key, for fixtures that need many certificates fast.
func newCertWithKey(t testing.TB, key crypto.Signer, mods ...func(*x509.Certificate)) Cert {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test.example.com"},
		NotBefore:    t0,
		NotAfter:     t0.Add(24 * time.Hour),
	}
	for _, mod := range mods {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return FromX509(c)
}

// pemBlock encodes one PEM block.
func pemBlock(t testing.TB, typ string, der []byte, headers map[string]string) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der}))
}

// randomBytes stands in for DER that must not parse, or for an encrypted key body.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return b
}

// assertNoSecrets fails when an error message echoes the start of any PEM body line of the input, or
// the upper-case PRIVATE KEY label that secret scanners look for.
func assertNoSecrets(t *testing.T, err error, inputs ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, "PRIVATE KEY") {
		t.Errorf("error message contains \"PRIVATE KEY\": %q", msg)
	}
	for _, in := range inputs {
		for _, line := range strings.Split(strings.ReplaceAll(in, "\r\n", "\n"), "\n") {
			line = strings.TrimSpace(line)
			// Skip armour lines and PEM headers (Proc-Type: ...): neither is a body.
			if len(line) < 16 || strings.HasPrefix(line, "-----") || strings.Contains(line, ": ") {
				continue
			}
			if strings.Contains(msg, line[:16]) {
				t.Errorf("error message echoes input body %q...: %q", line[:16], msg)
			}
		}
	}
}

func fingerprints(cs []Cert) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Fingerprint)
	}
	return out
}
