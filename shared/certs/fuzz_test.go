package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// FuzzParseChain: ParseChain never panics; what it accepts is Parse's certificates in order, and
// Validate runs on it without panicking, every error wrapping a sentinel; what it rejects wraps a
// sentinel with a short message.
func FuzzParseChain(f *testing.F) {
	root, rootKey := newCert(f, func(x *x509.Certificate) {
		x.Subject.CommonName, x.IsCA, x.BasicConstraintsValid = "Root", true, true
	})
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "leaf.example.com"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, root.X509, &leafKey.PublicKey, rootKey)
	if err != nil {
		f.Fatal(err)
	}
	leaf := pemBlock(f, "CERTIFICATE", der, nil)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		f.Fatal(err)
	}
	body := strings.Split(root.PEM, "\n")[1]
	for _, seed := range []string{
		leaf + root.PEM,
		root.PEM + leaf,
		leaf + leaf + root.PEM,
		" 0 s:CN=leaf.example.com\n" + leaf + " 1 s:CN=Root\n" + root.PEM,
		leaf + "\x00\xff\n" + root.PEM,
		leaf + body + "\n" + root.PEM,
		leaf + root.PEM + pemBlock(f, "PRIVATE KEY", pkcs8, nil),
		strings.ReplaceAll(leaf+root.PEM, "\n", "\r\n"),
		leaf[:len(leaf)/2] + root.PEM,
		"",
	} {
		f.Add(seed)
	}
	sentinels := []error{ErrEmpty, ErrNoPEM, ErrPrivateKey, ErrNotCertificate, ErrMalformed}
	chainSentinels := []error{ErrChainOrder, ErrNotCA, ErrDuplicate, ErrExpired, ErrNotYetValid, ErrUsage}
	wrapsOne := func(err error, list []error) bool {
		for _, s := range list {
			if errors.Is(err, s) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, input string) {
		ch, err := ParseChain(input)
		if err != nil {
			if ch.Elements != nil {
				t.Fatalf("chain returned with error %v", err)
			}
			if !wrapsOne(err, sentinels) {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			if len(err.Error()) > 320 {
				t.Fatalf("error message of %d bytes: input leaks into it", len(err.Error()))
			}
			return
		}
		cs, err := Parse(input)
		if err != nil {
			t.Fatalf("ParseChain accepted what Parse rejects: %v", err)
		}
		if diff := cmp.Diff(fingerprints(cs), fingerprints(ch.Elements)); diff != "" {
			t.Fatalf("chain elements differ from Parse (-Parse +ParseChain):\n%s", diff)
		}
		if ch.LeafFingerprint() != cs[0].Fingerprint || ch.Summary().Elements != len(cs) {
			t.Fatalf("leaf or summary disagrees with the elements")
		}
		if err := ch.Validate(ChainCheck{Now: t0, Kind: KindSyncer}); err != nil && !wrapsOne(err, chainSentinels) {
			t.Fatalf("Validate() error %q wraps no sentinel", err)
		}
	})
}
