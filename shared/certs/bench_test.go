package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
)

// BenchmarkParseBundle20 parses a 20-certificate RSA 2048 bundle, the size of a busy trust list.
func BenchmarkParseBundle20(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	var bundle strings.Builder
	for range 20 {
		bundle.WriteString(newCertWithKey(b, key).PEM)
	}
	input := bundle.String()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		cs, err := Parse(input)
		if err != nil || len(cs) != 20 {
			b.Fatalf("Parse() = %d certificates, %v", len(cs), err)
		}
	}
}

// BenchmarkGenerate makes a new key and certificate per iteration: RSA-4096 (what Redis Software 8.0
// uses) costs seconds, RSA-3072 (the default) a fraction of one, on a laptop-class core.
func BenchmarkGenerate(b *testing.B) {
	for _, kt := range KeyTypes() {
		b.Run(string(kt), func(b *testing.B) {
			p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: kt}
			for b.Loop() {
				if _, err := Generate(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerateWithKey is what tests pay for an RSA-4096 certificate when they pass a shared key.
func BenchmarkGenerateWithKey(b *testing.B) {
	key := sharedKey(b, RSA4096)
	p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: RSA4096}
	for b.Loop() {
		if _, err := GenerateWith(p, GenerateOptions{Key: key}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateChain parses and validates a three-element RSA chain (RSA-4096 leaf and root,
// RSA-3072 intermediate) with the leaf's key, as a secret change event would.
func BenchmarkValidateChain(b *testing.B) {
	rootKey, interKey := sharedKey(b, RSA4096), sharedKey(b, RSA3072)
	root := newCertWithKey(b, rootKey, func(x *x509.Certificate) {
		x.Subject = pkix.Name{CommonName: "Bench Root CA"}
		x.IsCA, x.BasicConstraintsValid, x.KeyUsage = true, true, x509.KeyUsageCertSign
		x.NotAfter = t0.Add(10 * DefaultValidity)
	})
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)), Subject: pkix.Name{CommonName: "Bench Intermediate CA"},
		NotBefore: t0, NotAfter: t0.Add(5 * DefaultValidity), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, root.X509, interKey.Public(), rootKey)
	if err != nil {
		b.Fatal(err)
	}
	interX, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	inter := FromX509(interX)
	leaf, err := GenerateWith(Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: RSA4096},
		GenerateOptions{Key: rootKey, Issuer: inter, IssuerKey: interKey})
	if err != nil {
		b.Fatal(err)
	}
	chainPEM := leaf.CertPEM + inter.PEM + root.PEM
	b.SetBytes(int64(len(chainPEM)))
	for b.Loop() {
		ch, err := ValidateChain(chainPEM, leaf.KeyPEM, KindSyncer, t0)
		if err != nil || len(ch.Elements) != 3 {
			b.Fatalf("ValidateChain() = %d elements, %v", len(ch.Elements), err)
		}
	}
}
