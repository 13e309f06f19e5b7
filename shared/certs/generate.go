package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Kind is which Redis Enterprise cluster certificate a profile describes.
type Kind string

const (
	KindSyncer Kind = "syncer" // replication client: Replica Of and Active-Active
	KindProxy  Kind = "proxy"  // what database endpoints serve
)

// ou is the organizational unit Redis Enterprise puts in the subject for each kind.
func (k Kind) ou() (string, bool) {
	switch k {
	case KindSyncer:
		return "syncer", true
	case KindProxy:
		return "redisdb", true
	}
	return "", false
}

func kindOfOU(ou string) (Kind, bool) {
	switch ou {
	case "syncer":
		return KindSyncer, true
	case "redisdb":
		return KindProxy, true
	}
	return "", false
}

const (
	// DefaultOrganization is the O of Redis Enterprise's own syncer and proxy certificates.
	DefaultOrganization = "RedisLabs Enterprise Cluster"
	// DefaultValidity is the lifetime of Redis Enterprise's install-time certificates.
	DefaultValidity = 365 * 24 * time.Hour
	// backdate lets a peer whose clock lags slightly accept a certificate generated just now.
	backdate = time.Minute
	// maxCN is RFC 5280's ub-common-name; OpenSSL refuses longer common names.
	maxCN = 64
)

// Profile describes a syncer or proxy certificate the way Redis Enterprise issues them: subject
// CN=<FQDN>, OU=syncer|redisdb, O=<Organization>; SANs FQDN and *.FQDN.
type Profile struct {
	FQDN          string        // cluster FQDN: CN and SANs FQDN + *.FQDN
	Kind          Kind          // required
	Organization  string        // default DefaultOrganization
	NotBefore     time.Time     // required (injected clock); valid from NotBefore-1m to NotBefore+Validity
	Validity      time.Duration // default DefaultValidity
	KeyType       KeyType       // default DefaultKeyType (RSA-3072); ECDSAP256 only when asked for
	IPAddresses   []net.IP      // extra IP SANs (local servers need 127.0.0.1: Go verifies hostnames)
	ExtraDNSNames []string      // extra DNS SANs
}

// withDefaults fills the optional fields.
func (p Profile) withDefaults() Profile {
	if p.Organization == "" {
		p.Organization = DefaultOrganization
	}
	if p.Validity == 0 {
		p.Validity = DefaultValidity
	}
	if p.KeyType == "" {
		p.KeyType = DefaultKeyType
	}
	return p
}

// Validate reports every problem with the profile at once; zero optional fields take their defaults.
func (p Profile) Validate() error {
	p = p.withDefaults()
	var errs []error
	if err := checkDNSName(p.FQDN, false); err != nil {
		errs = append(errs, fmt.Errorf("FQDN: %w", err))
	} else if len(p.FQDN) > maxCN {
		errs = append(errs, fmt.Errorf("FQDN: longer than %d characters, the limit of a common name", maxCN))
	}
	if _, ok := p.Kind.ou(); !ok {
		errs = append(errs, fmt.Errorf("kind %q: want %q or %q", p.Kind, KindSyncer, KindProxy))
	}
	if p.NotBefore.IsZero() {
		errs = append(errs, errors.New("NotBefore is required"))
	}
	if p.Validity < 0 {
		errs = append(errs, fmt.Errorf("validity %s: must be positive", p.Validity))
	}
	if !p.KeyType.valid() {
		errs = append(errs, fmt.Errorf("key type %q: want one of %s", p.KeyType, keyTypeList()))
	}
	for i, ip := range p.IPAddresses {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			errs = append(errs, fmt.Errorf("IP address %d: not an IP address", i+1))
		}
	}
	seen := map[string]bool{strings.ToLower(p.FQDN): true, "*." + strings.ToLower(p.FQDN): true}
	for i, name := range p.ExtraDNSNames {
		if err := checkDNSName(name, true); err != nil {
			errs = append(errs, fmt.Errorf("extra DNS name %d: %w", i+1, err))
			continue
		}
		if seen[strings.ToLower(name)] {
			errs = append(errs, fmt.Errorf("extra DNS name %d %q: already among the SANs", i+1, name))
		}
		seen[strings.ToLower(name)] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid certificate profile: %w", errors.Join(errs...))
	}
	return nil
}

// checkDNSName accepts a host name of letters, digits and hyphens, with an optional leading "*." label
// when wildcard is set.
func checkDNSName(name string, wildcard bool) error {
	if name == "" {
		return errors.New("empty")
	}
	host := name
	if wildcard {
		host = strings.TrimPrefix(host, "*.")
	}
	if len(name) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS name", name)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a DNS name", name)
			}
		}
	}
	return nil
}

// ProfileOf reads the profile of an existing syncer or proxy certificate, so a rotation can issue its
// successor: FQDN from CN, kind from OU, Validity from the dates, SANs beyond FQDN and *.FQDN, and the
// key type from the public key, as it is (an RSA-2048 model gives RSA2048: SuccessorProfile applies the
// RSA-3072 floor). NotBefore and Validity invert Generate's one-minute backdating; for a certificate not
// made by Generate, Validity is therefore one minute short of its full span.
func ProfileOf(c Cert) (Profile, error) {
	p, err := modelProfile(c)
	if err != nil {
		return Profile{}, err
	}
	kt, ok := keyTypeOf(c.X509.PublicKey)
	if !ok {
		return Profile{}, fmt.Errorf("profile of %s: %s key is not one of %s", c.name(), describeKey(c.X509.PublicKey), keyTypeList())
	}
	p.KeyType = kt
	return p, nil
}

// modelProfile is ProfileOf without the key type, which it leaves at the default.
func modelProfile(c Cert) (Profile, error) {
	x := c.X509
	if x == nil {
		return Profile{}, fmt.Errorf("profile of certificate: no parsed certificate: %w", ErrMalformed)
	}
	if len(x.Subject.OrganizationalUnit) != 1 {
		return Profile{}, fmt.Errorf("profile of %s: want one OU, found %d", c.name(), len(x.Subject.OrganizationalUnit))
	}
	kind, ok := kindOfOU(x.Subject.OrganizationalUnit[0])
	if !ok {
		return Profile{}, fmt.Errorf("profile of %s: OU %q is neither syncer nor redisdb", c.name(), x.Subject.OrganizationalUnit[0])
	}
	p := Profile{
		FQDN:      x.Subject.CommonName,
		Kind:      kind,
		NotBefore: x.NotBefore.Add(backdate),
	}
	p.Validity = x.NotAfter.Sub(p.NotBefore)
	if len(x.Subject.Organization) > 0 {
		p.Organization = strings.Join(x.Subject.Organization, ", ")
	}
	if len(x.IPAddresses) > 0 {
		p.IPAddresses = slices.Clone(x.IPAddresses)
	}
	for _, name := range x.DNSNames {
		if strings.EqualFold(name, p.FQDN) || strings.EqualFold(name, "*."+p.FQDN) {
			continue
		}
		p.ExtraDNSNames = append(p.ExtraDNSNames, name)
	}
	if err := p.Validate(); err != nil {
		return Profile{}, fmt.Errorf("profile of %s: %w", c.name(), err)
	}
	return p.withDefaults(), nil
}

// KeyPair is a generated certificate and its private key. Formatting it (fmt, slog) never shows the key.
type KeyPair struct {
	CertPEM string // one CERTIFICATE block
	KeyPEM  string // one PKCS#8 "PRIVATE KEY" block: secret
	Cert    Cert
}

// String names the certificate and redacts the key.
func (k KeyPair) String() string {
	s := k.Cert.Summary()
	return fmt.Sprintf("KeyPair{cert: %q sha256 %s not after %s, key: [redacted]}",
		s.Subject, s.Fingerprint, s.NotAfter.UTC().Format(time.RFC3339))
}

// Format makes every fmt verb, %#v and %d included, print String instead of the fields.
func (k KeyPair) Format(f fmt.State, _ rune) {
	fmt.Fprint(f, k.String())
}

// LogValue keeps the key out of slog output, whatever the handler.
func (k KeyPair) LogValue() slog.Value {
	return slog.StringValue(k.String())
}

// Generate issues a self-signed certificate and a new key for the profile. The certificate is its own
// trust anchor (IsCA), as Redis Enterprise's install-time certificates are, and serves both server and
// client authentication.
func Generate(p Profile) (KeyPair, error) {
	return GenerateWith(p, GenerateOptions{})
}

// GenerateOptions change where Generate's key and signature come from. The zero value is Generate.
type GenerateOptions struct {
	// Key is certified instead of a new key; it must be of the profile's key type. Tests pass one
	// RSA-4096 key to many certificates, since making one takes a second or more.
	Key crypto.Signer
	// Issuer and IssuerKey, both or neither, sign the certificate instead of itself: a CA-issued leaf
	// (not a CA, no keyCertSign, the issuer's key identifier as authority), as a customer's CA issues
	// them. For tests and the simulator; Redis Enterprise issues its own self-signed.
	Issuer    Cert
	IssuerKey crypto.Signer
}

// GenerateWith is Generate with a given key or issuer.
func GenerateWith(p Profile, opts GenerateOptions) (KeyPair, error) {
	if err := p.Validate(); err != nil {
		return KeyPair{}, err
	}
	p = p.withDefaults()
	ou, _ := p.Kind.ou()
	issued := opts.Issuer.X509 != nil
	if issued != (opts.IssuerKey != nil) {
		return KeyPair{}, fmt.Errorf("generate certificate for %s: an issuer needs both its certificate and its key", p.FQDN)
	}
	if issued {
		if !IsCA(opts.Issuer) {
			return KeyPair{}, fmt.Errorf("generate certificate for %s: issuer %s: %w", p.FQDN, opts.Issuer.name(), ErrNotCA)
		}
		if !samePublicKey(opts.IssuerKey.Public(), opts.Issuer.X509.PublicKey) {
			return KeyPair{}, fmt.Errorf("generate certificate for %s: issuer %s: %w", p.FQDN, opts.Issuer.name(), ErrKeyMismatch)
		}
	}

	key := opts.Key
	if key == nil {
		var err error
		if key, err = NewKey(p.KeyType); err != nil {
			return KeyPair{}, err
		}
	} else if kt, ok := keyTypeOf(key.Public()); !ok || kt != p.KeyType {
		return KeyPair{}, fmt.Errorf("generate certificate for %s: given a %s key for key type %s", p.FQDN, describeKey(key.Public()), p.KeyType)
	}

	serialBytes := make([]byte, 16)
	if _, err := rand.Read(serialBytes); err != nil {
		return KeyPair{}, fmt.Errorf("generate serial number: %w", err)
	}
	// SetBytes is never negative; the low bit keeps it non-zero as RFC 5280 asks.
	serial := new(big.Int).SetBytes(serialBytes)
	serial.SetBit(serial, 0, 1)

	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // RSA key exchange in TLS 1.2
	}
	// X.509 times have one-second precision: truncate so ProfileOf gives back what was asked.
	notBefore := p.NotBefore.Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         p.FQDN,
			OrganizationalUnit: []string{ou},
			Organization:       []string{p.Organization},
		},
		DNSNames:              append([]string{p.FQDN, "*." + p.FQDN}, p.ExtraDNSNames...),
		IPAddresses:           p.IPAddresses,
		NotBefore:             notBefore.Add(-backdate),
		NotAfter:              notBefore.Add(p.Validity),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  !issued,
		BasicConstraintsValid: true,
	}
	// Key identifiers let a verifier tell apart trust anchors with the same subject: during a syncer
	// rotation a source trusts the old and the new certificate side by side, and OpenSSL (redis-server)
	// picks the first same-subject anchor unless the authority key identifier names the right one.
	ski, err := keyID(key.Public())
	if err != nil {
		return KeyPair{}, fmt.Errorf("marshal public key for %s: %w", p.FQDN, err)
	}
	tmpl.SubjectKeyId, tmpl.AuthorityKeyId = ski, ski
	parent, signer := tmpl, key
	if issued {
		tmpl.KeyUsage &^= x509.KeyUsageCertSign
		parent, signer = opts.Issuer.X509, opts.IssuerKey
		if tmpl.AuthorityKeyId = opts.Issuer.X509.SubjectKeyId; len(tmpl.AuthorityKeyId) == 0 {
			if tmpl.AuthorityKeyId, err = keyID(opts.Issuer.X509.PublicKey); err != nil {
				return KeyPair{}, fmt.Errorf("marshal the issuer's public key for %s: %w", p.FQDN, err)
			}
		}
	} else {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return KeyPair{}, fmt.Errorf("create certificate for %s: %w", p.FQDN, err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parse generated certificate for %s: %w", p.FQDN, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encode %s key: %w", p.KeyType, err)
	}
	c := FromX509(parsed)
	return KeyPair{
		CertPEM: c.PEM,
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
		Cert:    c,
	}, nil
}

// keyID is RFC 5280 section 4.2.1.2 method 1: SHA-1 of the public key, an identifier, not a security
// function.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	id := sha1.Sum(der)
	return id[:], nil
}
