package audit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// testPEM returns a real PKCS#8 private key and a self-signed certificate, PEM-encoded.
func testPEM(t *testing.T) (keyPEM, certPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syncer.example.com"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cder, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cder}))
}

func jsonString(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func TestRedact(t *testing.T) {
	keyPEM, certPEM := testPEM(t)
	rsaKey := strings.Replace(strings.Replace(keyPEM, "BEGIN PRIVATE", "BEGIN RSA PRIVATE", 1), "END PRIVATE", "END RSA PRIVATE", 1)
	keyBody := strings.Split(keyPEM, "\n")[1] // a line of base64 that must not survive
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain message unchanged", "PUT /v1/bdbs/3: HTTP 400 invalid_schema: tls_mode", "PUT /v1/bdbs/3: HTTP 400 invalid_schema: tls_mode"},
		{"PKCS#8 private key", "bad key: " + keyPEM + "end", "bad key: [private key]\nend"},
		{"RSA private key", "x " + rsaKey, "x [private key]\n"},
		{"encrypted private key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", "[private key]"},
		{"private key cut short", "got " + keyPEM[:60], "got [private key]"},
		{"text starting inside a key", keyPEM[40:] + "after", "[private key]\nafter"},
		{"private key inside JSON", `{"client_key":` + jsonString(t, keyPEM) + `}`, `{"client_key":"[redacted]"}`},
		{"private key inside JSON under another name", `{"k":` + jsonString(t, keyPEM) + `}`, `{"k":"[private key]\n"}`},
		{"certificate", "trusted: " + certPEM + "and more", "trusted: [certificate]\nand more"},
		{"two certificates", certPEM + certPEM, "[certificate]\n[certificate]\n"},
		{"certificate cut short", "cert " + certPEM[:50], "cert [certificate]"},
		{"redis URI with password", "dial redis://admin:pass@east.example.com:12000: refused", "dial redis://admin:[redacted]@east.example.com:12000: refused"},
		{"rediss URI, password only", "rediss://:pass@h:1", "rediss://:[redacted]@h:1"},
		{"https URI", "GET https://admin%40corp:p%2Fw@cluster:9443/v1/bdbs failed", "GET https://admin%40corp:[redacted]@cluster:9443/v1/bdbs failed"},
		{"password holding @", "redis://admin:p@ss@host:1", "redis://admin:[redacted]@host:1"},
		{"URI without userinfo unchanged", "https://cluster:9443/v1/bdbs?fields=uid", "https://cluster:9443/v1/bdbs?fields=uid"},
		{"password= pair", "login failed user=admin password=hunter2 host=east", "login failed user=admin password=[redacted] host=east"},
		{"Password: pair", "Password: hunter2", "Password: [redacted]"},
		{"JSON password", `{"username":"admin","password":"hun\"ter2","url":"x"}`, `{"username":"admin","password":"[redacted]","url":"x"}`},
		{"JSON password with spaces", `{"password" : "a b c"}`, `{"password" : "[redacted]"}`},
		{"escaped JSON password", `body: {\"password\":\"hunter2\"}`, `body: {\"password\":\"[redacted]\"}`},
		{"authentication_admin_pass", `{"authentication_admin_pass":"s3cret"}`, `{"authentication_admin_pass":"[redacted]"}`},
		{"SecretString", `"SecretString":"{\"url\":\"u\"}"`, `"SecretString":"[redacted]"`},
		{"Basic credentials", "Authorization: Basic YWRtaW46aHVudGVyMg==", "Authorization: Basic [redacted]"},
		{"the word Basic unchanged", "Basic authentication failed", "Basic authentication failed"},
		{"lower-case key header", strings.ToLower(keyPEM), "[private key]\n"},
		{"password with a space and #", "redis://admin:p/a#s?s w@host:1 down", "redis://admin:[redacted]@host:1 down"},
		{"URI without a scheme", "admin:pw@east:12000", "admin:[redacted]@east:12000"},
		{"token= pair", "GET /v1?token=abc", "GET /v1?token=[redacted]"},
		{"a key and a certificate", keyPEM + certPEM, "[private key]\n[certificate]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			if got != tt.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			if strings.Contains(got, keyBody) {
				t.Errorf("Redact left key material in %q", got)
			}
		})
	}
}

func TestRedactCapsLength(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"ASCII", strings.Repeat("a", 5000)},
		{"multi-byte runes across the cut", strings.Repeat("é", 3000)},
		{"exactly the cap", strings.Repeat("b", MaxMessageLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.in)
			if len(got) > MaxMessageLen {
				t.Errorf("len = %d, want <= %d", len(got), MaxMessageLen)
			}
			if !utf8.ValidString(got) {
				t.Error("result is not valid UTF-8")
			}
			if len(tt.in) > MaxMessageLen && !strings.HasSuffix(got, truncatedMark) {
				t.Errorf("a cut message does not say so: ...%q", got[len(got)-20:])
			}
			if len(tt.in) <= MaxMessageLen && got != tt.in {
				t.Error("a message within the cap was changed")
			}
		})
	}
}

func FuzzRedactNeverLeaksAKeyHeader(f *testing.F) {
	f.Add("-----BEGIN PRIVATE KEY-----\nabc")
	f.Add("redis://a:b@h")
	header := regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		if header.MatchString(got) {
			t.Errorf("Redact(%q) = %q keeps a private key marker", s, got)
		}
		if len(got) > MaxMessageLen {
			t.Errorf("len %d over the cap", len(got))
		}
	})
}

func BenchmarkRedact(b *testing.B) {
	msg := `PUT /v1/bdbs/3: HTTP 400 {"error_code":"invalid_schema","password":"x","uri":"redis://a:b@h:1"}`
	b.ReportAllocs()
	for b.Loop() {
		Redact(msg)
	}
}
