package leakcheck

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/audit"
)

const keyPEM = "-----BEGIN EC PRIVATE KEY-----\nTk9UIEEgUkVBTCBLRVk6IGEgZml4dHVyZSBmb3IgdGhlIGxlYWsgc2Nhbm5lcg==\n-----END EC PRIVATE KEY-----\n" // not a real key: the body is base64 text

func TestScan(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		secrets []string
		want    []Finding
	}{
		{name: "clean text", text: `{"step":"trust","certificate":{"fingerprint":"ab"}} https://cluster:9443/v1/bdbs`, secrets: []string{"hunter2"}},
		{name: "empty secrets are ignored", text: "anything", secrets: []string{""}},
		{name: "PKCS#8 key header", text: "x -----BEGIN PRIVATE KEY-----\nAAA", want: []Finding{{PrivateKey, 2}}},
		{name: "EC key header", text: keyPEM, want: []Finding{{PrivateKey, 0}}},
		{name: "RSA and encrypted key headers", text: "-----BEGIN RSA PRIVATE KEY----- -----BEGIN ENCRYPTED PRIVATE KEY-----",
			want: []Finding{{PrivateKey, 0}, {PrivateKey, 32}}},
		{name: "certificate is not a leak", text: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{name: "given secret", text: "login as admin with hunter2 failed", secrets: []string{"hunter2"}, want: []Finding{{Secret, 20}}},
		{name: "given secret twice", text: "hunter2 hunter2", secrets: []string{"hunter2"}, want: []Finding{{Secret, 0}, {Secret, 8}}},
		{name: "secret escaped in JSON", text: `{"p":"a\"b\\c"}`, secrets: []string{`a"b\c`}, want: []Finding{{Secret, 6}}},
		{name: "secret escaped in a URL", text: "redis://[redacted]@h?k=p%40ss%2Fw", secrets: []string{"p@ss/w"}, want: []Finding{{Secret, 23}}},
		{name: "credential URI", text: "dial redis://admin:pw@east:12000", want: []Finding{{CredentialURI, 5}}},
		{name: "credential URI, empty user", text: "rediss://:pw@east", want: []Finding{{CredentialURI, 0}}},
		{name: "credential URI, https", text: "GET https://a:b@c/v1", want: []Finding{{CredentialURI, 4}}},
		{name: "user without password is not a credential", text: "ssh://git@github.com redis://[redacted]@h"},
		{name: "admin pass in JSON", text: `{"name":"db","authentication_admin_pass":"s3cret"}`, want: []Finding{{AdminPass, 14}}},
		{name: "admin pass in escaped JSON", text: `body: {\"authentication_admin_pass\":\"s3cret\"}`, want: []Finding{{AdminPass, 9}}},
		{name: "admin pass as key=value", text: "authentication_admin_pass=s3cret", want: []Finding{{AdminPass, 0}}},
		{name: "empty, null or redacted admin pass is fine", text: `{"authentication_admin_pass":""} {"authentication_admin_pass":null} authentication_admin_pass="[redacted]"`},
		{name: "lower-case key header", text: "k: -----begin private key-----\nAAA", want: []Finding{{PrivateKey, 3}}},
		{name: "OpenSSH key header", text: "-----BEGIN OPENSSH PRIVATE KEY-----", want: []Finding{{PrivateKey, 0}}},
		{name: "key header in JSON", text: `{"k":"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"}`, want: []Finding{{PrivateKey, 6}}},
		{name: "the end of a key without its header", text: "AAAA\nBBBB\n-----END RSA PRIVATE KEY-----", want: []Finding{{PrivateKey, 10}}},
		{name: "credential URI, password with / # ? and a space", text: "dial redis://admin:p/a#s?s w@host:1 refused", want: []Finding{{CredentialURI, 5}}},
		{name: "credential URI, password with @ and :", text: "redis://admin:p@s:s@host:1", want: []Finding{{CredentialURI, 0}}},
		{name: "credential URI, upper-case scheme", text: "REDIS://admin:pw@east", want: []Finding{{CredentialURI, 0}}},
		{name: "credential without a scheme", text: "connect admin:pw@east:12000", want: []Finding{{CredentialURI, 8}}},
		{name: "credential without a scheme, in JSON", text: `{"src":"admin:p/w@east:12000"}`, want: []Finding{{CredentialURI, 8}}},
		{name: "redacted URIs are fine", text: "redis://admin:[redacted]@east:1 admin:[redacted]@east:12000 rediss://:[redacted]@h"},
		{name: "a URI, then an e-mail address", text: "GET https://east:9443/v1 failed for admin@redis.com"},
		{name: "a URI, then a redacted one", text: "GET https://east:9443/v1 and redis://admin:[redacted]@west:1"},
		{name: "password=", text: "user=admin password=hunter2", want: []Finding{{SecretField, 11}}},
		{name: "pwd=, token=, secret=", text: "pwd=a&token=b secret=c", want: []Finding{{SecretField, 0}, {SecretField, 6}, {SecretField, 14}}},
		{name: "JSON password", text: `{"password":"hunter2"}`, want: []Finding{{SecretField, 2}}},
		{name: "escaped JSON api_key", text: `{\"api_key\":\"k\"}`, want: []Finding{{SecretField, 3}}},
		{name: "secret fields redacted, empty, null or described", text: `password=[redacted] {"token":"[redacted]","password":"","pwd":null} field password: missing; private key: not PEM`},
		{name: "a secret's name is not a secret", text: `{"msg":"rotation step","secret":"replica-tls/clusters/east/syncer"} field private_key: missing`},
		{name: "one text, every kind", text: "hunter2 " + keyPEM + ` redis://u:p@h {"authentication_admin_pass":"x"}`, secrets: []string{"hunter2"},
			want: []Finding{{Secret, 0}, {PrivateKey, 8}, {CredentialURI, 8 + len(keyPEM) + 1}, {AdminPass, 8 + len(keyPEM) + 17}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Scan(tt.text, tt.secrets...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Scan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScanCatchesEachKind proves each detector can fire, so a clean result elsewhere means something.
func TestScanCatchesEachKind(t *testing.T) {
	samples := map[Kind]string{
		PrivateKey:    keyPEM,
		Secret:        "the password is correct-horse",
		CredentialURI: "rediss://admin:pw@cluster:12000",
		AdminPass:     `"authentication_admin_pass": "pw"`,
		SecretField:   `"password": "pw"`,
	}
	for kind, text := range samples {
		t.Run(string(kind), func(t *testing.T) {
			fs := Scan(text, "correct-horse")
			if len(fs) != 1 || fs[0].Kind != kind {
				t.Errorf("Scan(%q) = %v, want one %s finding", text, fs, kind)
			}
		})
	}
}

func TestCheckDoesNotEchoSecrets(t *testing.T) {
	const secret = "correct-horse-battery"
	err := Check("lambda log", "oops "+secret+" and redis://a:"+secret+"@h", secret)
	if err == nil {
		t.Fatal("Check found nothing")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Check error echoes the secret: %q", err)
	}
	if want := "lambda log leaks secret material: secret at offset 5, credential-uri at offset 31, secret at offset 41"; err.Error() != want {
		t.Errorf("Check error = %q, want %q", err, want)
	}
	if err := Check("clean", "nothing here", secret); err != nil {
		t.Errorf("Check of clean text = %v", err)
	}
}

// TestRedactedTextIsClean ties the two halves together: what audit.Redact lets through, Scan accepts.
func TestRedactedTextIsClean(t *testing.T) {
	dirty := "PUT failed: " + keyPEM + ` uri=redis://admin:hunter2@east:12000 {"authentication_admin_pass":"hunter2","password":"hunter2"}` +
		"\n" + strings.ToLower(keyPEM) + "dial redis://admin:p/a#s?s w@host:1 down\nconnect admin:pw@east:12000 pwd=x token=y secret=z"
	if len(Scan(dirty, "hunter2")) < 11 {
		t.Fatalf("the dirty sample is not dirty enough: %v", Scan(dirty, "hunter2"))
	}
	if fs := Scan(audit.Redact(dirty), "hunter2"); len(fs) != 0 {
		t.Errorf("Scan(Redact(dirty)) = %v, want nothing: %q", fs, audit.Redact(dirty))
	}
}

// FuzzRedactedIsClean ties the two halves together for any password: embedded in each way the
// redactor must handle, Scan finds it, and Scan finds nothing in what audit.Redact lets through.
func FuzzRedactedIsClean(f *testing.F) {
	for _, s := range []string{"hunter2", "p/a#s?s w", "p@ss:w", `q"uo'te`} {
		f.Add(s)
	}
	templates := []string{
		"dial redis://admin:%s@east.example.com:12000: refused",
		"connect admin:%s@east.example.com:12000 failed",
		"login password=%s host=east",
		`{"password":%s,"user":"admin"}`,
		`{"uri":%s}`,
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if len(pw) < 4 || strings.ContainsAny(pw, "\r\n") || strings.Contains(pw, "://") || strings.Contains(pw, "-----") {
			t.Skip()
		}
		js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
		for i, tmpl := range templates {
			var dirty, clean string
			switch i {
			case 1, 2:
				if strings.ContainsFunc(pw, unicode.IsSpace) || strings.ContainsAny(pw, `"'\`) {
					continue // a password in a word ends at whitespace or a quote
				}
				fallthrough
			case 0:
				dirty, clean = fmt.Sprintf(tmpl, pw), fmt.Sprintf(tmpl, "[redacted]")
			case 3:
				dirty, clean = fmt.Sprintf(tmpl, js(pw)), fmt.Sprintf(tmpl, `"[redacted]"`)
			case 4:
				dirty, clean = fmt.Sprintf(tmpl, js("redis://admin:"+pw+"@h:1")), fmt.Sprintf(tmpl, js("redis://admin:[redacted]@h:1"))
			}
			if len(Scan(clean, pw)) > 0 {
				continue // the password is part of the template's own text ("admin", "east")
			}
			if len(Scan(dirty, pw)) == 0 {
				t.Errorf("Scan(%q) found nothing", dirty)
			}
			if got := audit.Redact(dirty); len(Scan(got, pw)) > 0 {
				t.Errorf("Scan(Redact(%q)) = %v: %q", dirty, Scan(got, pw), got)
			}
		}
	})
}
