// Package certstest makes CA-issued certificate chains for tests and for the cluster simulator: a root
// CA, an intermediate it issued, and syncer or proxy leaves the intermediate issues with the profile
// certs.Generate gives its self-signed certificates. Nothing here is for production certificates.
package certstest

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// Keys hands out one key per key type, made on first use, so tests can certify RSA-4096 keys without
// paying a second or more per certificate. Safe for concurrent use; the zero value is ready.
type Keys struct {
	mu   sync.Mutex
	keys map[certs.KeyType]crypto.Signer
}

// Key returns the key of that type, generating it the first time.
func (k *Keys) Key(kt certs.KeyType) (crypto.Signer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kt]; ok {
		return key, nil
	}
	key, err := certs.NewKey(kt)
	if err != nil {
		return nil, err
	}
	if k.keys == nil {
		k.keys = map[certs.KeyType]crypto.Signer{}
	}
	k.keys[kt] = key
	return key, nil
}

// CAOptions shape a test CA. NotBefore is required; the rest have defaults.
type CAOptions struct {
	Name                 string        // CN prefix: "<Name> Root CA", "<Name> Intermediate CA"; default "replica-tls test"
	NotBefore            time.Time     // required (injected clock)
	RootValidity         time.Duration // default 10 years
	IntermediateValidity time.Duration // default 5 years
	KeyType              certs.KeyType // of both CA keys; default certs.ECDSAP256, fast
	Keys                 *Keys         // source of the leaves' keys; nil makes a new key per leaf
	// ModifyRoot and ModifyIntermediate change a template just before it is signed: an expired or
	// non-CA intermediate, for tests of validation.
	ModifyRoot, ModifyIntermediate func(*x509.Certificate)
}

// CA is a root and an intermediate it issued.
type CA struct {
	Root, Intermediate       certs.Cert
	RootKey, IntermediateKey crypto.Signer
	keys                     *Keys
}

// NewCA makes a root CA and an intermediate CA (path length 0) under it.
func NewCA(opts CAOptions) (*CA, error) {
	if opts.NotBefore.IsZero() {
		return nil, errors.New("new test CA: NotBefore is required")
	}
	if opts.Name == "" {
		opts.Name = "replica-tls test"
	}
	if opts.RootValidity == 0 {
		opts.RootValidity = 10 * 365 * 24 * time.Hour
	}
	if opts.IntermediateValidity == 0 {
		opts.IntermediateValidity = 5 * 365 * 24 * time.Hour
	}
	if opts.KeyType == "" {
		opts.KeyType = certs.ECDSAP256
	}
	// CA keys are always new, never from Keys: a key shared with another certificate would let a wrong
	// issuer's signature verify.
	rootKey, err := certs.NewKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("new test CA: %w", err)
	}
	interKey, err := certs.NewKey(opts.KeyType)
	if err != nil {
		return nil, fmt.Errorf("new test CA: %w", err)
	}
	rootTmpl := caTemplate(opts.Name+" Root CA", opts.NotBefore, opts.RootValidity)
	rootTmpl.SubjectKeyId = keyID(rootKey)
	if opts.ModifyRoot != nil {
		opts.ModifyRoot(rootTmpl)
	}
	root, err := sign(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("new test CA: root: %w", err)
	}
	interTmpl := caTemplate(opts.Name+" Intermediate CA", opts.NotBefore, opts.IntermediateValidity)
	interTmpl.MaxPathLen, interTmpl.MaxPathLenZero = 0, true
	interTmpl.SubjectKeyId, interTmpl.AuthorityKeyId = keyID(interKey), root.X509.SubjectKeyId
	if opts.ModifyIntermediate != nil {
		opts.ModifyIntermediate(interTmpl)
	}
	inter, err := sign(interTmpl, root.X509, interKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("new test CA: intermediate: %w", err)
	}
	return &CA{Root: root, Intermediate: inter, RootKey: rootKey, IntermediateKey: interKey, keys: opts.Keys}, nil
}

func caTemplate(cn string, notBefore time.Time, validity time.Duration) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"replica-tls tests"}},
		NotBefore:             notBefore.Add(-time.Hour),
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (certs.Cert, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return certs.Cert{}, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return certs.Cert{}, err
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return certs.Cert{}, err
	}
	return certs.FromX509(x), nil
}

// keyID is a key identifier: SHA-1 of the public key, as certs.Generate computes it.
func keyID(key crypto.Signer) []byte {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil // x509.CreateCertificate computes one itself for a CA when none is set
	}
	id := sha1.Sum(der)
	return id[:]
}

// Issued is a leaf the CA issued, with the chain as Redis Enterprise takes it.
type Issued struct {
	Leaf     certs.KeyPair // the leaf alone and its key
	Chain    certs.Chain   // leaf, intermediate, root
	ChainPEM string        // Chain as PEM, leaf to root
	KeyPEM   string        // the leaf's private key (PKCS#8): secret
}

// String names the chain and redacts the key.
func (i Issued) String() string {
	s := i.Chain.Summary()
	return fmt.Sprintf("Issued{leaf %q sha256 %s, %d elements, key: [redacted]}", s.Subject, s.Fingerprint, s.Elements)
}

// Format makes every fmt verb print String: test failure messages must not show the key either.
func (i Issued) Format(f fmt.State, _ rune) {
	fmt.Fprint(f, i.String())
}

// LogValue keeps the key out of slog output.
func (i Issued) LogValue() slog.Value {
	return slog.StringValue(i.String())
}

// Issue makes a syncer or proxy leaf with profile p, signed by the intermediate. Its key is of
// p.KeyType: from the CA's Keys when it has some (shared by every leaf of that type), else new.
func (ca *CA) Issue(p certs.Profile) (Issued, error) {
	opts := certs.GenerateOptions{Issuer: ca.Intermediate, IssuerKey: ca.IntermediateKey}
	if ca.keys != nil {
		kt := p.KeyType
		if kt == "" {
			kt = certs.DefaultKeyType
		}
		key, err := ca.keys.Key(kt)
		if err != nil {
			return Issued{}, fmt.Errorf("issue test certificate for %s: %w", p.FQDN, err)
		}
		opts.Key = key
	}
	kp, err := certs.GenerateWith(p, opts)
	if err != nil {
		return Issued{}, fmt.Errorf("issue test certificate for %s: %w", p.FQDN, err)
	}
	ch := certs.Chain{Elements: []certs.Cert{kp.Cert, ca.Intermediate, ca.Root}}
	return Issued{Leaf: kp, Chain: ch, ChainPEM: ch.PEM(), KeyPEM: kp.KeyPEM}, nil
}

// IssuersPEM is the intermediate and the root, in chain order: what a trust list would hold to trust
// every leaf of this CA.
func (ca *CA) IssuersPEM() string {
	return certs.Bundle([]certs.Cert{ca.Intermediate, ca.Root})
}

// Chain makes a new CA valid from an hour before p.NotBefore for years, and issues a leaf with profile p
// (ECDSA P-256 CA keys; the leaf's key as p.KeyType says, from keys when not nil). It fails the test on
// any error.
func Chain(t testing.TB, p certs.Profile, keys *Keys) Issued {
	t.Helper()
	ca, err := NewCA(CAOptions{NotBefore: p.NotBefore, Keys: keys})
	if err != nil {
		t.Fatalf("certstest: %v", err)
	}
	iss, err := ca.Issue(p)
	if err != nil {
		t.Fatalf("certstest: %v", err)
	}
	return iss
}
