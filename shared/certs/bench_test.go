package certs

import (
	"crypto/rand"
	"crypto/rsa"
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

func BenchmarkGenerate(b *testing.B) {
	for _, kt := range []KeyType{RSA2048, ECDSAP256} {
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
