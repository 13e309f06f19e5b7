package secretstore

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// decodeJSON unmarshals a secret string. Its errors never quote the input: encoding/json's syntax
// errors would echo a character of the secret.
func decodeJSON(at, raw string, v any) error {
	err := json.Unmarshal([]byte(raw), v)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return invalidf("%s: malformed JSON at byte %d", at, syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return invalidf("%s: field %s: must be a JSON %s", at, typ.Field, jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &typ):
		return invalidf("%s: must be a JSON object", at)
	default:
		return invalidf("%s: malformed JSON", at)
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return goKind
	}
}

// certProblem says what is wrong with a field that must hold one or more PEM certificates, or ""
// when nothing is. The reason never quotes the input.
func certProblem(s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return "missing"
	}
	if !strings.HasPrefix(trimmed, "-----BEGIN ") {
		return "not PEM"
	}
	rest := []byte(trimmed)
	for n := 1; len(bytes.TrimSpace(rest)) > 0; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		switch {
		case b == nil && n == 1:
			return "not PEM"
		case b == nil:
			return "trailing data after the PEM blocks"
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return "holds a private key, not a certificate"
		case b.Type != "CERTIFICATE":
			return fmt.Sprintf("PEM block %d is not a CERTIFICATE", n)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Sprintf("PEM block %d is not a valid X.509 certificate", n)
		}
	}
	return ""
}

// keyProblem says what is wrong with a field that must hold one PEM private key, or "".
func keyProblem(s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" {
		return "missing"
	}
	if !strings.HasPrefix(trimmed, "-----BEGIN ") {
		return "not PEM"
	}
	b, rest := pem.Decode([]byte(trimmed))
	switch {
	case b == nil:
		return "not PEM"
	case b.Type == "CERTIFICATE":
		return "holds a certificate, not a private key"
	case !strings.HasSuffix(b.Type, "PRIVATE KEY"):
		return "not a PEM private key"
	case len(bytes.TrimSpace(rest)) > 0:
		return "must hold exactly one PEM block"
	}
	return ""
}

// pairProblem says whether key is the private key of the first certificate in cert, or "".
// Both must already have passed certProblem and keyProblem.
func pairProblem(cert, key string) string {
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		// err is not shown: it would only restate this, and the key must never reach a message.
		return "is not a valid private key for field certificate"
	}
	return ""
}

// certLabel names a certificate without printing it: the SHA-256 fingerprint of its first block.
func certLabel(s string) string {
	if s == "" {
		return ""
	}
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return fmt.Sprintf("[%d bytes, not a PEM certificate]", len(s))
	}
	sum := sha256.Sum256(b.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:])
}
