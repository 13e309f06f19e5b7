package dptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// SelfSigned issues a certificate with the profile of a Redis Enterprise syncer (OU=syncer) or proxy
// (OU=redisdb) certificate, like certs.Generate, with or without an authority key identifier.
//
// Why both: redis-server (OpenSSL) looks a certificate's issuer up in tls-ca-cert-file by subject
// name. Two self-signed certificates with the same subject (the old and the new syncer certificate
// of a cluster, trusted side by side during a rotation) are told apart only by their key
// identifiers; without an authority key identifier OpenSSL takes the first one and refuses the
// other. Go's x509.CreateCertificate writes no authority key identifier on a self-signed
// certificate unless the template sets one.
func SelfSigned(t testing.TB, fqdn string, kind certs.Kind, authorityKeyID bool) certs.KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ski := sha1.Sum(pub) // a key identifier, not a security function
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	ou := "syncer"
	if kind == certs.KindProxy {
		ou = "redisdb"
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fqdn, OrganizationalUnit: []string{ou}, Organization: []string{certs.DefaultOrganization}},
		DNSNames:              []string{fqdn, "*." + fqdn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	if authorityKeyID {
		tmpl.AuthorityKeyId = ski[:]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c, err := certs.ParseOne(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certs.KeyPair{CertPEM: certPEM, KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), Cert: c}
}
