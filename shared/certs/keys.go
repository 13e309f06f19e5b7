package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyType is the key algorithm and size of a generated certificate.
type KeyType string

const (
	// RSA2048 is what older Redis Enterprise releases issue. Below the default floor: generated only when
	// asked for by name.
	RSA2048 KeyType = "rsa2048"
	// RSA3072 is the default and the floor: RHEL 8's FUTURE crypto policy refuses smaller RSA keys.
	RSA3072 KeyType = "rsa3072"
	// RSA4096 is what live Redis Software 8.0 proxy and syncer certificates carry.
	RSA4096 KeyType = "rsa4096"
	// ECDSAP256 is much faster to generate; only when asked for by name (tests), never by default.
	ECDSAP256 KeyType = "ecdsa-p256"
)

// DefaultKeyType is the key of a certificate whose profile names none.
const DefaultKeyType = RSA3072

// minRSABits is the floor SuccessorProfile raises a weaker model's key to.
const minRSABits = 3072

// KeyTypes lists the key types Generate makes, strongest RSA first.
func KeyTypes() []KeyType {
	return []KeyType{RSA4096, RSA3072, RSA2048, ECDSAP256}
}

// ParseKeyType reads a key type name (case-insensitive), for settings read from the environment.
func ParseKeyType(s string) (KeyType, error) {
	kt := KeyType(strings.ToLower(strings.TrimSpace(s)))
	if !kt.valid() {
		return "", fmt.Errorf("key type %q: want one of %s", clip(s, 40), keyTypeList())
	}
	return kt, nil
}

func (k KeyType) valid() bool {
	for _, known := range KeyTypes() {
		if k == known {
			return true
		}
	}
	return false
}

// rsaBits is the modulus size of an RSA key type, 0 for another algorithm.
func (k KeyType) rsaBits() int {
	switch k {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

func keyTypeList() string {
	names := make([]string, 0, len(KeyTypes()))
	for _, k := range KeyTypes() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// NewKey generates a private key of the given type. RSA-4096 takes from a few hundred milliseconds to
// several seconds (BenchmarkGenerate); tests that need many such certificates pass one key to
// GenerateWith instead.
func NewKey(kt KeyType) (crypto.Signer, error) {
	var key crypto.Signer
	var err error
	switch {
	case kt.rsaBits() > 0:
		key, err = rsa.GenerateKey(rand.Reader, kt.rsaBits())
	case kt == ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("generate key: key type %q: want one of %s", clip(string(kt), 40), keyTypeList())
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", kt, err)
	}
	return key, nil
}

// keyTypeOf names a public key's type, false when Generate makes no such key.
func keyTypeOf(pub crypto.PublicKey) (KeyType, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		for _, kt := range KeyTypes() {
			if kt.rsaBits() == k.N.BitLen() {
				return kt, true
			}
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return ECDSAP256, true
		}
	}
	return "", false
}

// describeKey names a public key's algorithm and size for messages: "RSA-4096", "ECDSA P-384".
func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case nil:
		return "no"
	}
	return fmt.Sprintf("%T", pub)
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// KeyChoice states which key a successor certificate gets and why: what a rotation logs and audits.
type KeyChoice struct {
	KeyType KeyType `json:"key_type"`            // what the successor gets
	Model   string  `json:"model_key,omitempty"` // the model's key, e.g. "RSA-4096"
	Raised  bool    `json:"raised,omitempty"`    // stronger than the model's: it was below the floor
	Reason  string  `json:"reason"`
}

// String is the choice in one line, for logs.
func (k KeyChoice) String() string {
	return fmt.Sprintf("%s (model %s): %s", k.KeyType, k.Model, k.Reason)
}

// SuccessorProfile is the profile of the certificate that replaces model: its subject, SANs and kind
// (ProfileOf), and its key type and size unless keyType names one. Left to follow the model, an RSA key
// of at least 3072 bits is kept as it is (RSA-4096 stays RSA-4096); a smaller RSA key is raised to
// RSA-3072, since RHEL 8's FUTURE crypto policy refuses smaller keys, and an odd size between to the
// next generated one; a key of another algorithm
// (ECDSA, Ed25519) gives RSA-3072 too, as ECDSA is generated only when asked for by name. An RSA key
// larger than 4096 bits is an error unless keyType names one: the successor would be weaker. The
// caller sets NotBefore and, if it wants another, Validity.
func SuccessorProfile(model Cert, keyType KeyType) (Profile, KeyChoice, error) {
	p, err := modelProfile(model)
	if err != nil {
		return Profile{}, KeyChoice{}, err
	}
	pub := model.X509.PublicKey
	choice := KeyChoice{Model: describeKey(pub)}
	rsaPub, isRSA := pub.(*rsa.PublicKey)
	switch {
	case keyType != "":
		if !keyType.valid() {
			return Profile{}, KeyChoice{}, fmt.Errorf("successor of %s: key type %q: want one of %s", model.name(), clip(string(keyType), 40), keyTypeList())
		}
		choice.KeyType, choice.Reason = keyType, "asked for by name"
	case isRSA && rsaPub.N.BitLen() < minRSABits:
		choice.KeyType, choice.Raised = RSA3072, true
		choice.Reason = fmt.Sprintf("the model's %s key is below the RSA-%d floor (RHEL 8's FUTURE crypto policy refuses smaller keys)", choice.Model, minRSABits)
	case isRSA:
		// The smallest generated size that is not weaker than the model's.
		for _, kt := range []KeyType{RSA3072, RSA4096} {
			if kt.rsaBits() >= rsaPub.N.BitLen() {
				choice.KeyType, choice.Raised = kt, kt.rsaBits() > rsaPub.N.BitLen()
				break
			}
		}
		if choice.KeyType == "" {
			return Profile{}, KeyChoice{}, fmt.Errorf("successor of %s: its %s key is larger than any generated key type; name one of %s", model.name(), choice.Model, keyTypeList())
		}
		choice.Reason = "follows the model"
		if choice.Raised {
			choice.Reason = fmt.Sprintf("the smallest generated size not weaker than the model's %s key", choice.Model)
		}
	default:
		choice.KeyType = DefaultKeyType
		choice.Reason = fmt.Sprintf("the model's key is %s; ECDSA keys are generated only when asked for by name", choice.Model)
	}
	p.KeyType = choice.KeyType
	return p, choice, nil
}
