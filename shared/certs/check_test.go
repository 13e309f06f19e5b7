package certs

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckValidity(t *testing.T) {
	c, _ := newCert(t) // valid t0 to t0+24h
	notAfter := t0.Add(24 * time.Hour)
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"a second before NotBefore", t0.Add(-time.Second), ErrNotYetValid},
		{"at NotBefore", t0, nil},
		{"in the middle", t0.Add(12 * time.Hour), nil},
		{"at NotAfter", notAfter, nil},
		{"a second after NotAfter", notAfter.Add(time.Second), ErrExpired},
		{"a nanosecond after NotAfter", notAfter.Add(time.Nanosecond), ErrExpired},
		{"a year later", notAfter.AddDate(1, 0, 0), ErrExpired},
		{"in another time zone, same instant", notAfter.In(time.FixedZone("UTC+5", 5*3600)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckValidity(tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckValidity() = %v, want %v", err, tt.want)
			}
			if err == nil {
				return
			}
			// The message names the certificate by subject and fingerprint prefix, and gives the dates.
			for _, want := range []string{"CN=test.example.com", c.Fingerprint[:16], tt.now.UTC().Format(time.RFC3339)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
			bound := notAfter
			if tt.want == ErrNotYetValid {
				bound = t0
			}
			if !strings.Contains(err.Error(), bound.Format(time.RFC3339)) {
				t.Errorf("message %q lacks the bound %s", err, bound.Format(time.RFC3339))
			}
		})
	}
	if err := (Cert{}).CheckValidity(t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("CheckValidity() of an empty Cert = %v, want ErrMalformed", err)
	}
}

func TestExpiresWithin(t *testing.T) {
	c, _ := newCert(t) // NotAfter t0+24h
	tests := []struct {
		name string
		now  time.Time
		d    time.Duration
		want bool
	}{
		{"NotAfter exactly at now+d", t0, 24 * time.Hour, true},
		{"NotAfter a second after now+d", t0, 24*time.Hour - time.Second, false},
		{"far from expiry", t0, time.Hour, false},
		{"zero window, still valid", t0, 0, false},
		{"already expired", t0.Add(25 * time.Hour), 0, true},
		{"45-day alert window", t0.Add(-44 * 24 * time.Hour), 45 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.ExpiresWithin(tt.now, tt.d); got != tt.want {
				t.Errorf("ExpiresWithin(%s, %s) = %v, want %v", tt.now, tt.d, got, tt.want)
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	withEKU := func(ekus ...x509.ExtKeyUsage) func(*x509.Certificate) {
		return func(x *x509.Certificate) { x.ExtKeyUsage = ekus }
	}
	none, _ := newCert(t)
	serverOnly, _ := newCert(t, withEKU(x509.ExtKeyUsageServerAuth))
	both, _ := newCert(t, withEKU(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth))
	anyUsage, _ := newCert(t, withEKU(x509.ExtKeyUsageAny))
	unknownOnly, _ := newCert(t, func(x *x509.Certificate) {
		x.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}
	})
	tests := []struct {
		name  string
		cert  Cert
		usage x509.ExtKeyUsage
		want  error
	}{
		{"no EKU allows client auth", none, x509.ExtKeyUsageClientAuth, nil},
		{"no EKU allows server auth", none, x509.ExtKeyUsageServerAuth, nil},
		{"serverAuth only fails clientAuth", serverOnly, x509.ExtKeyUsageClientAuth, ErrUsage},
		{"serverAuth only passes serverAuth", serverOnly, x509.ExtKeyUsageServerAuth, nil},
		{"both pass clientAuth", both, x509.ExtKeyUsageClientAuth, nil},
		{"both pass serverAuth", both, x509.ExtKeyUsageServerAuth, nil},
		{"any passes clientAuth", anyUsage, x509.ExtKeyUsageClientAuth, nil},
		{"unknown EKU only fails clientAuth", unknownOnly, x509.ExtKeyUsageClientAuth, ErrUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cert.CheckUsage(tt.usage)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckUsage() = %v, want %v", err, tt.want)
			}
			if err != nil && (!strings.Contains(err.Error(), "clientAuth") || !strings.Contains(err.Error(), tt.cert.Fingerprint[:16])) {
				t.Errorf("message %q should name the usage and the certificate", err)
			}
		})
	}
}

func TestCheckKeyPair(t *testing.T) {
	ec := generate(t, Profile{FQDN: "a.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256})
	ec2 := generate(t, Profile{FQDN: "b.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256})
	rsaPair := generate(t, Profile{FQDN: "c.example.com", Kind: KindProxy, NotBefore: t0, KeyType: RSA2048})

	ecKey, ok := parsePKCS8(t, ec.KeyPEM).(*ecdsa.PrivateKey)
	if !ok {
		t.Fatal("ECDSA key is not *ecdsa.PrivateKey")
	}
	rsaKey, ok := parsePKCS8(t, rsaPair.KeyPEM).(*rsa.PrivateKey)
	if !ok {
		t.Fatal("RSA key is not *rsa.PrivateKey")
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1PEM := pemBlock(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil)
	sec1PEM := pemBlock(t, "EC PRIVATE KEY", sec1, nil)

	tests := []struct {
		name      string
		cert, key string
		want      error  // nil with wantMsg "" means success
		wantMsg   string // substring of the message
	}{
		{"ECDSA PKCS#8", ec.CertPEM, ec.KeyPEM, nil, ""},
		{"RSA PKCS#8", rsaPair.CertPEM, rsaPair.KeyPEM, nil, ""},
		{"RSA PKCS#1", rsaPair.CertPEM, pkcs1PEM, nil, ""},
		{"EC SEC 1", ec.CertPEM, sec1PEM, nil, ""},
		{"CRLF", strings.ReplaceAll(ec.CertPEM, "\n", "\r\n"), strings.ReplaceAll(ec.KeyPEM, "\n", "\r\n"), nil, ""},
		{"chain, key of the leaf", ec.CertPEM + ec2.CertPEM, ec.KeyPEM, nil, ""},
		{"another ECDSA key", ec.CertPEM, ec2.KeyPEM, ErrKeyMismatch, "CN=a.example.com"},
		{"RSA certificate, ECDSA key", rsaPair.CertPEM, ec.KeyPEM, ErrKeyMismatch, ""},
		{"ECDSA certificate, RSA key", ec.CertPEM, pkcs1PEM, ErrKeyMismatch, ""},
		{"chain, key of the second certificate", ec.CertPEM + ec2.CertPEM, ec2.KeyPEM, ErrKeyMismatch, ""},
		{"empty key", ec.CertPEM, " \n", ErrEmpty, "private key"},
		{"garbage key", ec.CertPEM, "not a key", ErrNoPEM, "private key"},
		{"damaged key armour", ec.CertPEM, "-----BEGIN PRIVATE KEY-----\nMIIE!!\n-----END PRIVATE KEY-----\n", nil, "bad PEM encoding"},
		{"certificate in the key slot", ec.CertPEM, ec.CertPEM, nil, `("CERTIFICATE") is not a private key`},
		{"encrypted PKCS#8 key", ec.CertPEM, pemBlock(t, "ENCRYPTED PRIVATE KEY", randomBytes(t, 200), nil), nil, "encrypted keys are not supported"},
		{"legacy encrypted key", rsaPair.CertPEM, pemBlock(t, "RSA PRIVATE KEY", randomBytes(t, 640), map[string]string{
			"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}), nil, "encrypted keys are not supported"},
		{"two keys", ec.CertPEM, ec.KeyPEM + ec2.KeyPEM, nil, "exactly one PEM block"},
		{"corrupt key DER", ec.CertPEM, pemBlock(t, "PRIVATE KEY", randomBytes(t, 120), nil), nil, "does not parse"},
		{"empty certificate", "", ec.KeyPEM, ErrEmpty, "certificate"},
		{"key in the certificate slot", ec.KeyPEM, ec.KeyPEM, ErrPrivateKey, "certificate"},
		{"swapped inputs", ec.KeyPEM, ec.CertPEM, ErrPrivateKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeyPair(tt.cert, tt.key)
			if tt.want == nil && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("CheckKeyPair() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckKeyPair() = nil, want an error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("CheckKeyPair() = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CheckKeyPair() = %q, want it to contain %q", err, tt.wantMsg)
			}
			assertNoSecrets(t, err, tt.cert, tt.key)
		})
	}
}

func parsePKCS8(t *testing.T, keyPEM string) any {
	t.Helper()
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key is not one PKCS#8 PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse PKCS#8 key: %v", err)
	}
	return key
}

func generate(t testing.TB, p Profile) KeyPair {
	t.Helper()
	kp, err := Generate(p)
	if err != nil {
		t.Fatalf("Generate(%s %s %s) error = %v", p.Kind, p.KeyType, p.FQDN, err)
	}
	return kp
}
