package certs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRejectsBadInput(t *testing.T) {
	cert, ecKey := newCert(t)
	other, _ := newCert(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024) // size is irrelevant here; 1024 keeps the test fast
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	pub, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr.example.com"}}, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pemBlock(t, "PRIVATE KEY", pkcs8, nil)
	withoutEnd := cert.PEM[:strings.Index(cert.PEM, "-----END")]

	tests := []struct {
		name    string
		input   string
		want    error
		wantMsg string // a substring the message must hold, "" for none
	}{
		{"empty", "", ErrEmpty, ""},
		{"whitespace", " \n\t\r\n  ", ErrEmpty, ""},
		{"garbage", "hello, this is not a certificate", ErrNoPEM, ""},
		{"bare base64 without armour", base64.StdEncoding.EncodeToString(cert.X509.Raw), ErrNoPEM, ""},
		{"dashes only", "-----\n-----", ErrNoPEM, ""},
		{"PKCS#8 private key", keyPEM, ErrPrivateKey, `PEM block 1 ("private key")`},
		{"EC private key", pemBlock(t, "EC PRIVATE KEY", sec1, nil), ErrPrivateKey, `"ec private key"`},
		{"RSA private key", pemBlock(t, "RSA PRIVATE KEY", pkcs1, nil), ErrPrivateKey, `"rsa private key"`},
		{"legacy encrypted RSA key", pemBlock(t, "RSA PRIVATE KEY", randomBytes(t, 640), map[string]string{
			"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}), ErrPrivateKey, ""},
		{"PKCS#8 encrypted key", pemBlock(t, "ENCRYPTED PRIVATE KEY", randomBytes(t, 300), nil), ErrPrivateKey, `"encrypted private key"`},
		{"OpenSSH private key", pemBlock(t, "OPENSSH PRIVATE KEY", randomBytes(t, 300), nil), ErrPrivateKey, ""},
		{"private key with a damaged body", "-----BEGIN PRIVATE KEY-----\n" + strings.Repeat("MIIEv!!", 12) + "\n-----END PRIVATE KEY-----\n", ErrPrivateKey, ""},
		{"private key then certificate", keyPEM + cert.PEM, ErrPrivateKey, "PEM block 1"},
		{"certificate then private key", cert.PEM + keyPEM, ErrPrivateKey, "PEM block 2"},
		{"CSR", pemBlock(t, "CERTIFICATE REQUEST", csr, nil), ErrNotCertificate, `PEM block 1 ("CERTIFICATE REQUEST")`},
		{"public key", pemBlock(t, "PUBLIC KEY", pub, nil), ErrNotCertificate, `"PUBLIC KEY"`},
		{"OpenSSL trusted certificate", pemBlock(t, "TRUSTED CERTIFICATE", cert.X509.Raw, nil), ErrNotCertificate, ""},
		{"mixed bundle", cert.PEM + pemBlock(t, "CERTIFICATE REQUEST", csr, nil) + other.PEM, ErrNotCertificate, "PEM block 2"},
		{"corrupt DER", pemBlock(t, "CERTIFICATE", randomBytes(t, 200), nil), ErrMalformed, "PEM block 1"},
		{"truncated DER", pemBlock(t, "CERTIFICATE", cert.X509.Raw[:len(cert.X509.Raw)-10], nil), ErrMalformed, ""},
		{"DER with trailing bytes", pemBlock(t, "CERTIFICATE", append(append([]byte{}, cert.X509.Raw...), 0, 0), nil), ErrMalformed, ""},
		{"bad base64", "-----BEGIN CERTIFICATE-----\nMIIB!!!not base64!!!\n-----END CERTIFICATE-----\n", ErrMalformed, ""},
		{"BEGIN without END", withoutEnd, ErrMalformed, "no END line"},
		{"BEGIN without END before a key", withoutEnd + keyPEM, ErrMalformed, "no END line"},
		{"truncated certificate before a good one", withoutEnd + other.PEM, ErrMalformed, "PEM block 1 (CERTIFICATE): no END line"},
		{"good certificate, truncated one, good one", other.PEM + withoutEnd + cert.PEM, ErrMalformed, "PEM block 2 (CERTIFICATE): no END line"},
		{"END without BEGIN", cert.PEM[strings.Index(cert.PEM, "\n")+1:], ErrMalformed, "END line without BEGIN"},
		{"stray END between blocks", cert.PEM + "-----END CERTIFICATE-----\n" + other.PEM, ErrMalformed, "before PEM block 2"},
		{"END line of another type", strings.Replace(cert.PEM, "END CERTIFICATE", "END X509 CRL", 1), ErrMalformed, ""},
		{"unterminated BEGIN line", "-----BEGIN CERTIFICATE\n" + cert.PEM[strings.Index(cert.PEM, "\n")+1:], ErrMalformed, "BEGIN line"},
		{"certificate then garbage", cert.PEM + "this was pasted by mistake\n", ErrMalformed, "after PEM block 1"},
		{"certificate then a base64 fragment", cert.PEM + "MIIBkTCB+wIJAKHHIr0kY5YUMA0GCSqGSIb3DQEBBQUAMA0xCzAJBgNV\n", ErrMalformed, "after PEM block 1"},
		{"two certificates then garbage", cert.PEM + other.PEM + "x", ErrMalformed, "after PEM block 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.input)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse() error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("Parse() returned %d certificates with an error", len(got))
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			assertNoSecrets(t, err, tt.input)
			// Normalize and ParseOne share the parser: the same input fails them the same way.
			if _, err := Normalize(tt.input); !errors.Is(err, tt.want) {
				t.Errorf("Normalize() error = %v, want %v", err, tt.want)
			}
			if _, err := ParseOne(tt.input); !errors.Is(err, tt.want) {
				t.Errorf("ParseOne() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseAcceptsCertificates(t *testing.T) {
	a, _ := newCert(t)
	b, _ := newCert(t)
	body := base64.StdEncoding.EncodeToString(a.X509.Raw)
	var wrapped76 strings.Builder
	for len(body) > 76 {
		wrapped76.WriteString(body[:76] + "\n")
		body = body[76:]
	}
	wrapped76.WriteString(body + "\n")

	tests := []struct {
		name  string
		input string
		want  []Cert
	}{
		{"one certificate", a.PEM, []Cert{a}},
		{"CRLF line endings", strings.ReplaceAll(a.PEM+b.PEM, "\n", "\r\n"), []Cert{a, b}},
		{"no trailing newline", strings.TrimSuffix(a.PEM, "\n"), []Cert{a}},
		{"surrounding whitespace", "\n\n  " + a.PEM + "\n\t \n", []Cert{a}},
		{"two certificates keep their order", b.PEM + a.PEM, []Cert{b, a}},
		{"the same certificate twice is kept twice", a.PEM + a.PEM, []Cert{a, a}},
		{"leading text before the first block", "subject=CN=test.example.com\nissuer=CN=test.example.com\n" + a.PEM, []Cert{a}},
		{"explanatory text before each block", "Bag Attributes\n    friendlyName: a\n" + a.PEM + " 1 s:CN=b\n   i:CN=b\n" + b.PEM, []Cert{a, b}},
		{"76-column base64", "-----BEGIN CERTIFICATE-----\n" + wrapped76.String() + "-----END CERTIFICATE-----\n", []Cert{a}},
		{"PEM headers are dropped", pemBlock(t, "CERTIFICATE", a.X509.Raw, map[string]string{"Comment": "from the UI"}), []Cert{a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.input)
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(fingerprints(tt.want), fingerprints(got)); diff != "" {
				t.Errorf("fingerprints (-want +got):\n%s", diff)
			}
			for i, c := range got {
				if c.PEM != tt.want[i].PEM {
					t.Errorf("certificate %d PEM is not normalised:\n%s", i, c.PEM)
				}
				if c.X509 == nil || c.Fingerprint != Fingerprint(c.X509.Raw) {
					t.Errorf("certificate %d: X509 or Fingerprint not filled", i)
				}
			}
			norm, err := Normalize(tt.input)
			if err != nil {
				t.Fatalf("Normalize() error = %v", err)
			}
			if norm != Bundle(tt.want) {
				t.Errorf("Normalize() = %q, want %q", norm, Bundle(tt.want))
			}
			again, err := Normalize(norm)
			if err != nil || again != norm {
				t.Errorf("Normalize is not idempotent: %q, %v", again, err)
			}
		})
	}
}

func TestParseOne(t *testing.T) {
	a, _ := newCert(t)
	b, _ := newCert(t)
	tests := []struct {
		name    string
		input   string
		want    string // fingerprint
		wantErr string
	}{
		{"one", a.PEM, a.Fingerprint, ""},
		{"two", a.PEM + b.PEM, "", "exactly one certificate, found 2"},
		{"none", "", "", "no PEM data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOne(tt.input)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOne() error = %v, want %q", err, tt.wantErr)
				}
				if got.X509 != nil {
					t.Errorf("ParseOne() returned a certificate with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOne() error = %v", err)
			}
			if got.Fingerprint != tt.want {
				t.Errorf("fingerprint = %s, want %s", got.Fingerprint, tt.want)
			}
		})
	}
}

// The fixture was made and fingerprinted by OpenSSL (testdata/README.md): our fingerprint must agree
// with an independent tool, whatever the line endings.
func TestFingerprintMatchesOpenSSL(t *testing.T) {
	pemBytes, err := os.ReadFile("testdata/syncer-openssl.pem")
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, err := os.ReadFile("testdata/syncer-openssl.sha256")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(wantBytes))
	for name, input := range map[string]string{
		"LF":             string(pemBytes),
		"CRLF":           strings.ReplaceAll(string(pemBytes), "\n", "\r\n"),
		"normalised":     mustNormalize(t, string(pemBytes)),
		"with text dump": "Certificate:\n    Data:\n        Version: 3 (0x2)\n" + string(pemBytes),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := ParseOne(input)
			if err != nil {
				t.Fatalf("ParseOne() error = %v", err)
			}
			if c.Fingerprint != want {
				t.Errorf("Fingerprint = %s, OpenSSL says %s", c.Fingerprint, want)
			}
			if got := Fingerprint(c.X509.Raw); got != want {
				t.Errorf("Fingerprint(DER) = %s, want %s", got, want)
			}
		})
	}
}

func mustNormalize(t *testing.T, s string) string {
	t.Helper()
	n, err := Normalize(s)
	if err != nil {
		t.Fatalf("Normalize() error = %v", err)
	}
	return n
}

func TestFingerprint(t *testing.T) {
	// SHA-256 of the empty input, a published constant: lowercase hex, 64 digits.
	if got, want := Fingerprint(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("Fingerprint(nil) = %s, want %s", got, want)
	}
	c, _ := newCert(t)
	sum := sha256.Sum256(c.X509.Raw)
	if got, want := Fingerprint(c.X509.Raw), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Fingerprint() = %s, want %s", got, want)
	}
	if got := Fingerprint(c.X509.Raw); got != Fingerprint(c.X509.Raw) || got != strings.ToLower(got) {
		t.Errorf("Fingerprint() not stable or not lower case: %s", got)
	}
}

func TestFromX509(t *testing.T) {
	c, _ := newCert(t)
	got := FromX509(c.X509)
	if got.X509 != c.X509 || got.Fingerprint != Fingerprint(c.X509.Raw) {
		t.Errorf("FromX509() = %+v", got.Summary())
	}
	if !strings.HasPrefix(got.PEM, "-----BEGIN CERTIFICATE-----\n") || !strings.HasSuffix(got.PEM, "-----END CERTIFICATE-----\n") {
		t.Errorf("FromX509().PEM = %q", got.PEM)
	}
	if diff := cmp.Diff(Cert{}, FromX509(nil)); diff != "" {
		t.Errorf("FromX509(nil) (-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	c, _ := newCert(t, func(x *x509.Certificate) {
		x.Subject = pkix.Name{CommonName: "cluster1.example.com", OrganizationalUnit: []string{"syncer"}, Organization: []string{DefaultOrganization}}
	})
	want := Summary{
		Fingerprint: c.Fingerprint,
		Subject:     "CN=cluster1.example.com,OU=syncer,O=RedisLabs Enterprise Cluster",
		NotAfter:    t0.Add(24 * time.Hour),
	}
	if diff := cmp.Diff(want, c.Summary()); diff != "" {
		t.Errorf("Summary() (-want +got):\n%s", diff)
	}
	// A Cert built by hand from an x509.Certificate alone still gets its fingerprint.
	if diff := cmp.Diff(want, Cert{X509: c.X509}.Summary()); diff != "" {
		t.Errorf("Summary() of a bare Cert (-want +got):\n%s", diff)
	}
	other, _ := newCert(t)
	if diff := cmp.Diff([]Summary{want, other.Summary()}, Summaries([]Cert{c, other})); diff != "" {
		t.Errorf("Summaries() (-want +got):\n%s", diff)
	}
	if got := Summaries(nil); got == nil || len(got) != 0 {
		t.Errorf("Summaries(nil) = %#v, want an empty slice (encodes as [] in audit events)", got)
	}
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"fingerprint":"` + c.Fingerprint + `","subject":"CN=cluster1.example.com,OU=syncer,O=RedisLabs Enterprise Cluster","not_after":"2030-01-03T03:04:05Z"}`
	if string(js) != wantJSON {
		t.Errorf("JSON = %s\nwant   %s", js, wantJSON)
	}
}

func TestDedupe(t *testing.T) {
	a, _ := newCert(t)
	b, _ := newCert(t)
	c, _ := newCert(t)
	bare := Cert{X509: a.X509} // no Fingerprint field: still a duplicate of a
	tests := []struct {
		name string
		in   []Cert
		want []string
	}{
		{"nil", nil, []string{}},
		{"no duplicates", []Cert{c, a, b}, []string{c.Fingerprint, a.Fingerprint, b.Fingerprint}},
		{"keeps first occurrence and order", []Cert{b, a, b, c, a, a}, []string{b.Fingerprint, a.Fingerprint, c.Fingerprint}},
		{"bare cert is a duplicate", []Cert{a, bare}, []string{a.Fingerprint}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Dedupe(tt.in)
			if diff := cmp.Diff(tt.want, fingerprints(got)); diff != "" {
				t.Errorf("Dedupe() (-want +got):\n%s", diff)
			}
		})
	}
	// The first occurrence is the one kept, not merely one with the same fingerprint.
	if got := Dedupe([]Cert{a, bare}); got[0].PEM != a.PEM {
		t.Errorf("Dedupe kept a later occurrence")
	}
}

func TestBundle(t *testing.T) {
	a, _ := newCert(t)
	b, _ := newCert(t)
	if got, want := Bundle([]Cert{a, b}), a.PEM+b.PEM; got != want {
		t.Errorf("Bundle() = %q, want %q", got, want)
	}
	if got := Bundle([]Cert{{X509: b.X509}}); got != b.PEM {
		t.Errorf("Bundle() of a bare Cert = %q, want %q", got, b.PEM)
	}
	if got := Bundle(nil); got != "" {
		t.Errorf("Bundle(nil) = %q", got)
	}
	back, err := Parse(Bundle([]Cert{b, a}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{b.Fingerprint, a.Fingerprint}, fingerprints(back)); diff != "" {
		t.Errorf("Parse(Bundle()) (-want +got):\n%s", diff)
	}
}

func TestSameCert(t *testing.T) {
	a, key := newCert(t)
	b, _ := newCert(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		x, y string
		want bool
	}{
		{"identical", a.PEM, a.PEM, true},
		{"CRLF and leading text", a.PEM, "subject=CN=test\r\n" + strings.ReplaceAll(a.PEM, "\n", "\r\n"), true},
		{"different certificates", a.PEM, b.PEM, false},
		{"bundle of the same certificate twice", a.PEM, a.PEM + a.PEM, false},
		{"bundle holding it", a.PEM, a.PEM + b.PEM, false},
		{"both empty", "", "", false},
		{"garbage on one side", a.PEM, "nope", false},
		{"its key", a.PEM, pemBlock(t, "PRIVATE KEY", pkcs8, nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameCert(tt.x, tt.y); got != tt.want {
				t.Errorf("SameCert() = %v, want %v", got, tt.want)
			}
			if got := SameCert(tt.y, tt.x); got != tt.want {
				t.Errorf("SameCert() swapped = %v, want %v", got, tt.want)
			}
		})
	}
}
