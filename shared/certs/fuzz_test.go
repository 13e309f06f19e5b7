package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; whatever it accepts re-parses to the same fingerprints; whatever it
// rejects is one of the sentinel errors with a short message.
func FuzzParse(f *testing.F) {
	a, key := newCert(f)
	b, _ := newCert(f)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	fixture, err := os.ReadFile("testdata/syncer-openssl.pem")
	if err != nil {
		f.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		a.PEM,
		a.PEM + b.PEM,
		string(fixture),
		strings.ReplaceAll(a.PEM, "\n", "\r\n"),
		"subject=CN=x\n" + a.PEM + "trailing",
		a.PEM[:len(a.PEM)/2],
		a.PEM + pemBlock(f, "PRIVATE KEY", pkcs8, nil),
		pemBlock(f, "PUBLIC KEY", pub, nil),
		pemBlock(f, "CERTIFICATE", a.X509.Raw[:40], nil),
		"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
		"-----BEGIN -----\n",
		"",
		"  \n",
		"garbage",
	} {
		f.Add(seed)
	}
	sentinels := []error{ErrEmpty, ErrNoPEM, ErrPrivateKey, ErrNotCertificate, ErrMalformed}
	f.Fuzz(func(t *testing.T, input string) {
		cs, err := Parse(input)
		if err != nil {
			if cs != nil {
				t.Fatalf("certificates returned with error %v", err)
			}
			found := false
			for _, s := range sentinels {
				found = found || errors.Is(err, s)
			}
			if !found {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error message of %d bytes: input leaks into it", len(err.Error()))
			}
			return
		}
		if len(cs) == 0 {
			t.Fatalf("no certificates and no error")
		}
		for i, c := range cs {
			if c.X509 == nil || c.Fingerprint != Fingerprint(c.X509.Raw) {
				t.Fatalf("certificate %d: fingerprint does not match its DER", i)
			}
			again, err := ParseOne(c.PEM)
			if err != nil {
				t.Fatalf("certificate %d: its PEM does not re-parse: %v", i, err)
			}
			if again.Fingerprint != c.Fingerprint {
				t.Fatalf("certificate %d: re-parsed to fingerprint %s, want %s", i, again.Fingerprint, c.Fingerprint)
			}
		}
		norm, err := Normalize(input)
		if err != nil || norm != Bundle(cs) {
			t.Fatalf("Normalize() disagrees with Parse: %v", err)
		}
	})
}
