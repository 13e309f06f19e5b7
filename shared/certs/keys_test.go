package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sharedKeys holds one key per type for the whole test binary: an RSA-4096 key takes up to seconds to
// make, and the profile tests need it several times.
var sharedKeys = struct {
	sync.Mutex
	m map[KeyType]crypto.Signer
}{m: map[KeyType]crypto.Signer{}}

func sharedKey(t testing.TB, kt KeyType) crypto.Signer {
	t.Helper()
	sharedKeys.Lock()
	defer sharedKeys.Unlock()
	if k, ok := sharedKeys.m[kt]; ok {
		return k
	}
	k, err := NewKey(kt)
	if err != nil {
		t.Fatalf("NewKey(%s) = %v", kt, err)
	}
	sharedKeys.m[kt] = k
	return k
}

// fieldModel certifies pub with the profile of a live Redis Software 8.0 syncer certificate (CN = FQDN,
// OU=syncer, O=RedisLabs Enterprise Cluster, SANs FQDN and *.FQDN plus an extra name and an IP,
// serverAuth and clientAuth), issued by a throwaway CA: the model need not be self-signed, and its key
// need not be one this package can make.
func fieldModel(t testing.TB, pub crypto.PublicKey) Cert {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Field CA"},
		NotBefore: t0, NotAfter: t0.Add(10 * DefaultValidity), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "cluster1.example.com", OrganizationalUnit: []string{"syncer"},
			Organization: []string{DefaultOrganization}},
		DNSNames:    []string{"cluster1.example.com", "*.cluster1.example.com", "cluster1-dr.example.com"},
		IPAddresses: []net.IP{net.ParseIP("192.0.2.10").To4()},
		NotBefore:   t0,
		NotAfter:    t0.Add(DefaultValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatalf("create model certificate: %v", err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse model certificate: %v", err)
	}
	return FromX509(x)
}

// fakeRSA is an RSA public key of the given size that no one holds the private key of: enough for a
// model whose key is only read.
func fakeRSA(t testing.TB, bits int) *rsa.PublicKey {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return &rsa.PublicKey{N: n, E: 65537}
}

func TestProfileOfReadsEveryGeneratedKeyType(t *testing.T) {
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			model := fieldModel(t, sharedKey(t, kt).Public())
			p, err := ProfileOf(model)
			if err != nil {
				t.Fatalf("ProfileOf() = %v", err)
			}
			want := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, Organization: DefaultOrganization,
				NotBefore: t0.Add(time.Minute), Validity: DefaultValidity - time.Minute, KeyType: kt,
				IPAddresses: []net.IP{net.ParseIP("192.0.2.10").To4()}, ExtraDNSNames: []string{"cluster1-dr.example.com"}}
			if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ProfileOf() (-want +got):\n%s", diff)
			}
		})
	}
}

// The successor of a field certificate keeps its subject and SANs and takes the key the model calls
// for, never weaker than RSA-3072 unless a key type is asked for by name.
func TestSuccessorProfile(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		modelKey   crypto.PublicKey
		keyType    KeyType // asked for
		want       KeyType
		wantRaised bool
		wantReason string
	}{
		{"RSA-4096 model gives RSA-4096", sharedKey(t, RSA4096).Public(), "", RSA4096, false, "follows the model"},
		{"RSA-3072 model gives RSA-3072", sharedKey(t, RSA3072).Public(), "", RSA3072, false, "follows the model"},
		{"RSA-2048 model gives RSA-3072", sharedKey(t, RSA2048).Public(), "", RSA3072, true, "RSA-2048 key is below the RSA-3072 floor"},
		{"RSA-1024 model gives RSA-3072", fakeRSA(t, 1024), "", RSA3072, true, "RSA-1024 key is below the RSA-3072 floor"},
		{"RSA-3584 model gives the next size up", fakeRSA(t, 3584), "", RSA4096, true, "not weaker than the model's RSA-3584"},
		{"ECDSA P-256 model gives RSA-3072 unless asked", sharedKey(t, ECDSAP256).Public(), "", RSA3072, false, "ECDSA keys are generated only when asked for by name"},
		{"ECDSA P-384 model gives RSA-3072", &p384.PublicKey, "", RSA3072, false, "the model's key is ECDSA P-384"},
		{"Ed25519 model gives RSA-3072", edPub, "", RSA3072, false, "the model's key is Ed25519"},
		{"ECDSA asked for by name", sharedKey(t, RSA4096).Public(), ECDSAP256, ECDSAP256, false, "asked for by name"},
		{"RSA-2048 asked for by name", sharedKey(t, RSA4096).Public(), RSA2048, RSA2048, false, "asked for by name"},
		{"RSA-4096 asked for on a 2048 model", sharedKey(t, RSA2048).Public(), RSA4096, RSA4096, false, "asked for by name"},
		{"RSA-8192 model with a key type asked for", fakeRSA(t, 8192), RSA4096, RSA4096, false, "asked for by name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := fieldModel(t, tt.modelKey)
			p, choice, err := SuccessorProfile(model, tt.keyType)
			if err != nil {
				t.Fatalf("SuccessorProfile() = %v", err)
			}
			if choice.KeyType != tt.want || p.KeyType != tt.want || choice.Raised != tt.wantRaised {
				t.Errorf("key %s (profile %s), raised %v; want %s, raised %v", choice.KeyType, p.KeyType, choice.Raised, tt.want, tt.wantRaised)
			}
			if !strings.Contains(choice.Reason, tt.wantReason) || choice.Model != describeKey(tt.modelKey) {
				t.Errorf("choice = %+v, want model %s and a reason containing %q", choice, describeKey(tt.modelKey), tt.wantReason)
			}

			// The successor itself: the model's subject and SANs, the chosen key. A shared key keeps this
			// fast; Generate makes a new key of the same type the same way (NewKey).
			p.NotBefore = t0.Add(time.Hour)
			kp, err := GenerateWith(p, GenerateOptions{Key: sharedKey(t, tt.want)})
			if err != nil {
				t.Fatalf("GenerateWith(successor) = %v", err)
			}
			x := kp.Cert.X509
			if got, _ := keyTypeOf(x.PublicKey); got != tt.want {
				t.Errorf("successor key %s, want %s", describeKey(x.PublicKey), tt.want)
			}
			if x.Subject.String() != model.X509.Subject.String() {
				t.Errorf("successor subject %q, want the model's %q", x.Subject, model.X509.Subject)
			}
			if diff := cmp.Diff(model.X509.DNSNames, x.DNSNames); diff != "" {
				t.Errorf("successor DNS SANs (-model +successor):\n%s", diff)
			}
			if diff := cmp.Diff(model.X509.IPAddresses, x.IPAddresses); diff != "" {
				t.Errorf("successor IP SANs (-model +successor):\n%s", diff)
			}
			if diff := cmp.Diff(model.X509.ExtKeyUsage, x.ExtKeyUsage); diff != "" {
				t.Errorf("successor extended key usage (-model +successor):\n%s", diff)
			}
		})
	}
}

func TestSuccessorProfileRejects(t *testing.T) {
	tests := []struct {
		name    string
		model   Cert
		keyType KeyType
		wantMsg string
	}{
		{"RSA-8192 model: no generated key is as strong", fieldModel(t, fakeRSA(t, 8192)), "", "RSA-8192 key is larger than any generated key type"},
		{"unknown key type asked for", fieldModel(t, sharedKey(t, RSA4096).Public()), "rsa1024", `key type "rsa1024"`},
		{"model without a syncer or proxy OU", func() Cert { c, _ := newCert(t); return c }(), "", "want one OU"},
		{"empty Cert", Cert{}, "", "no parsed certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, choice, err := SuccessorProfile(tt.model, tt.keyType)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("SuccessorProfile() error = %v, want %q", err, tt.wantMsg)
			}
			if diff := cmp.Diff(Profile{}, p); diff != "" || choice != (KeyChoice{}) {
				t.Errorf("SuccessorProfile() returned a profile or a choice with its error")
			}
		})
	}
}

func TestParseKeyType(t *testing.T) {
	for _, kt := range KeyTypes() {
		got, err := ParseKeyType(" " + strings.ToUpper(string(kt)) + " ")
		if err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v", kt, got, err)
		}
	}
	for _, bad := range []string{"", "rsa", "rsa1024", "ecdsa-p384", "ed25519"} {
		if got, err := ParseKeyType(bad); err == nil || got != "" {
			t.Errorf("ParseKeyType(%q) = %q, %v; want an error", bad, got, err)
		}
	}
}

func TestNewKeySizes(t *testing.T) {
	for _, kt := range []KeyType{RSA2048, RSA3072, ECDSAP256} { // RSA-4096: sharedKey, checked below
		key, err := NewKey(kt)
		if err != nil {
			t.Fatalf("NewKey(%s) = %v", kt, err)
		}
		if got, ok := keyTypeOf(key.Public()); !ok || got != kt {
			t.Errorf("NewKey(%s) made a %s key", kt, describeKey(key.Public()))
		}
	}
	if got, _ := keyTypeOf(sharedKey(t, RSA4096).Public()); got != RSA4096 {
		t.Errorf("NewKey(%s) made a %s key", RSA4096, describeKey(sharedKey(t, RSA4096).Public()))
	}
	if _, err := NewKey("rsa512"); err == nil {
		t.Errorf("NewKey(rsa512) made a key")
	}
}

// The default is RSA-3072, never weaker, and ECDSA comes only by name.
func TestDefaultKeyIsRSA3072(t *testing.T) {
	p := Profile{FQDN: "cluster1.example.com", Kind: KindProxy, NotBefore: t0}
	if got := p.withDefaults().KeyType; got != RSA3072 || DefaultKeyType != RSA3072 {
		t.Fatalf("default key type %s (DefaultKeyType %s), want %s", got, DefaultKeyType, RSA3072)
	}
	kp, err := GenerateWith(p, GenerateOptions{Key: sharedKey(t, RSA3072)})
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := kp.Cert.X509.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 3072 {
		t.Errorf("default profile gave a %s key", describeKey(kp.Cert.X509.PublicKey))
	}
}

func TestGenerateWithRejects(t *testing.T) {
	ca := generate(t, Profile{FQDN: "ca.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256})
	caKey := parsePKCS8(t, ca.KeyPEM).(crypto.Signer)
	leaf, leafKey := newCert(t) // not a CA: no basic constraints
	p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256}
	tests := []struct {
		name    string
		profile Profile
		opts    GenerateOptions
		wantErr error
		wantMsg string
	}{
		{"key of another type", p, GenerateOptions{Key: sharedKey(t, RSA3072)}, nil, "given a RSA-3072 key for key type ecdsa-p256"},
		{"key of another RSA size", Profile{FQDN: "a.example.com", Kind: KindProxy, NotBefore: t0, KeyType: RSA4096},
			GenerateOptions{Key: sharedKey(t, RSA3072)}, nil, "given a RSA-3072 key for key type rsa4096"},
		{"issuer without its key", p, GenerateOptions{Issuer: ca.Cert}, nil, "both its certificate and its key"},
		{"issuer key without the issuer", p, GenerateOptions{IssuerKey: caKey}, nil, "both its certificate and its key"},
		{"issuer that is not a CA", p, GenerateOptions{Issuer: leaf, IssuerKey: leafKey}, ErrNotCA, "is not a CA"},
		{"issuer key that is not the issuer's", p, GenerateOptions{Issuer: ca.Cert, IssuerKey: leafKey}, ErrKeyMismatch, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := GenerateWith(tt.profile, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("GenerateWith() error = %v, want %q (%v)", err, tt.wantMsg, tt.wantErr)
			}
			if kp.CertPEM != "" || kp.KeyPEM != "" {
				t.Errorf("GenerateWith() returned a key pair with its error")
			}
		})
	}
}

// An issued leaf is the same profile as a self-signed one, but not a CA, and names its issuer's key.
func TestGenerateWithIssuer(t *testing.T) {
	ca := generate(t, Profile{FQDN: "ca.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256})
	caKey := parsePKCS8(t, ca.KeyPEM).(crypto.Signer)
	p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: RSA4096}
	kp, err := GenerateWith(p, GenerateOptions{Key: sharedKey(t, RSA4096), Issuer: ca.Cert, IssuerKey: caKey})
	if err != nil {
		t.Fatal(err)
	}
	x := kp.Cert.X509
	if x.IsCA || x.KeyUsage&x509.KeyUsageCertSign != 0 || IsCA(kp.Cert) {
		t.Errorf("issued leaf: IsCA %v, key usage %b: want no CA and no keyCertSign", x.IsCA, x.KeyUsage)
	}
	if x.Issuer.String() != ca.Cert.X509.Subject.String() || string(x.AuthorityKeyId) != string(ca.Cert.X509.SubjectKeyId) {
		t.Errorf("issuer %q, authority key id %x; want %q, %x", x.Issuer, x.AuthorityKeyId, ca.Cert.X509.Subject, ca.Cert.X509.SubjectKeyId)
	}
	if err := x.CheckSignatureFrom(ca.Cert.X509); err != nil {
		t.Errorf("not signed by the issuer: %v", err)
	}
	if err := CheckKeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
		t.Errorf("CheckKeyPair() = %v", err)
	}
	got, err := ProfileOf(kp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.withDefaults(), got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ProfileOf(issued leaf) (-want +got):\n%s", diff)
	}
}

// An OpenSSL-made chain with the profile of a live Redis Software 8.0 syncer certificate
// (testdata/README.md): it parses and validates as a chain, is compared by its leaf, is covered by a
// trust list of its root, and its RSA-4096 leaf is a model whose successor keeps RSA-4096 and its SANs.
func TestOpenSSLSyncerChain(t *testing.T) {
	text, err := os.ReadFile("testdata/syncer-chain-openssl.pem")
	if err != nil {
		t.Fatal(err)
	}
	wantFP, err := os.ReadFile("testdata/syncer-chain-openssl.sha256")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseChain(string(text))
	if err != nil {
		t.Fatal(err)
	}
	leaf := ch.Leaf()
	now := leaf.X509.NotBefore.Add(time.Hour)
	if err := ch.Validate(ChainCheck{Now: now, Kind: KindSyncer}); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if err := ch.Validate(ChainCheck{Now: leaf.X509.NotAfter.Add(time.Second), Kind: KindSyncer}); !errors.Is(err, ErrExpired) {
		t.Errorf("Validate() after the leaf's NotAfter = %v, want ErrExpired", err)
	}
	root, ok := ch.Root()
	if len(ch.Elements) != 3 || !ok || ch.LeafFingerprint() != strings.TrimSpace(string(wantFP)) {
		t.Fatalf("chain of %d, root %v, leaf %s; want 3, a root and %s", len(ch.Elements), ok, ch.LeafFingerprint(), wantFP)
	}
	s := ch.Summary()
	if s.Issuer != "CN=Example Issuing CA,O=Example Corp" || s.Subject != "CN=cluster1.example.com,OU=syncer,O=RedisLabs Enterprise Cluster" || s.Elements != 3 {
		t.Errorf("Summary() = %+v", s)
	}
	if cov := CoversChain([]string{root.PEM}, ch, now); !cov.Covered || cov.By != CoveredByCA || cov.Entry.Subject != "CN=Example Root CA,O=Example Corp" {
		t.Errorf("CoversChain(root) = %+v", cov)
	}
	if !TrustListCAOnly([]string{root.PEM, ch.Elements[1].PEM}) || RoleOf(ch.Elements[1]) != RoleIntermediate || RoleOf(leaf) != RoleLeaf {
		t.Errorf("roles: root %s, intermediate %s, leaf %s", RoleOf(root), RoleOf(ch.Elements[1]), RoleOf(leaf))
	}

	p, choice, err := SuccessorProfile(leaf, "")
	if err != nil {
		t.Fatal(err)
	}
	if choice.KeyType != RSA4096 || choice.Raised || choice.Model != "RSA-4096" {
		t.Errorf("KeyChoice = %+v, want RSA-4096 following the model", choice)
	}
	p.NotBefore = now
	kp, err := GenerateWith(p, GenerateOptions{Key: sharedKey(t, RSA4096)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(leaf.X509.DNSNames, kp.Cert.X509.DNSNames); diff != "" {
		t.Errorf("successor DNS SANs (-model +successor):\n%s", diff)
	}
	if kp.Cert.X509.Subject.String() != s.Subject {
		t.Errorf("successor subject %q, want %q", kp.Cert.X509.Subject, s.Subject)
	}
}
