// Package leakcheck finds secret material in text that must not carry any: logs, error messages,
// audit events, HTTP bodies. Tests run it over everything the code under test wrote.
package leakcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Kind names what was found.
type Kind string

// The kinds Scan reports.
const (
	PrivateKey    Kind = "private-key"    // a PEM private key header
	Secret        Kind = "secret"         // one of the given secret strings, raw or JSON- or URL-escaped
	CredentialURI Kind = "credential-uri" // scheme://user:password@
	AdminPass     Kind = "admin-pass"     // a non-empty authentication_admin_pass value
)

// Finding is one leak: its kind and the byte offset where it starts (for AdminPass, the key name).
// It never holds the secret.
type Finding struct {
	Kind   Kind
	Offset int
}

func (f Finding) String() string { return fmt.Sprintf("%s at offset %d", f.Kind, f.Offset) }

// Scan returns every leak in text, ordered by offset. secrets are the passwords (or other values) the
// caller knows and that must not appear; empty ones are ignored. The text's redaction markers
// ("[redacted]") are not leaks.
func Scan(text string, secrets ...string) []Finding {
	var out []Finding
	add := func(k Kind, locs [][]int) {
		for _, l := range locs {
			out = append(out, Finding{Kind: k, Offset: l[0]})
		}
	}
	add(PrivateKey, regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`).FindAllStringIndex(text, -1))
	// A password after the ':' of the userinfo, up to the last '@' before the host.
	add(CredentialURI, regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:[^\s/?#]+@`).FindAllStringIndex(text, -1))

	adminPass := regexp.MustCompile(`(?i)authentication_admin_pass(?:\\?["'])?\s*[:=]\s*(\\?["'])?([^"'\s\\,}&]*)`)
	for _, m := range adminPass.FindAllStringSubmatchIndex(text, -1) {
		val := ""
		if m[4] >= 0 {
			val = text[m[4]:m[5]]
		}
		if val != "" && val != "[redacted]" && val != "null" {
			out = append(out, Finding{Kind: AdminPass, Offset: m[0]})
		}
	}

	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range forms(s) {
			for i := 0; ; {
				j := strings.Index(text[i:], form)
				if j < 0 {
					break
				}
				out = append(out, Finding{Kind: Secret, Offset: i + j})
				i += j + len(form)
			}
		}
	}
	return dedupe(out)
}

// forms lists how a secret can appear in text: as is, escaped inside a JSON string, and escaped in a
// URL (userinfo or query).
func forms(s string) []string {
	out := []string{s}
	if b, err := json.Marshal(s); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	out = append(out, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("u", s).String()[2:])
	return out
}

func dedupe(fs []Finding) []Finding {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Offset != fs[j].Offset {
			return fs[i].Offset < fs[j].Offset
		}
		return fs[i].Kind < fs[j].Kind
	})
	out := fs[:0]
	for i, f := range fs {
		if i > 0 && f == fs[i-1] {
			continue
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Check returns an error listing the leaks in text (kinds and offsets only), or nil when it is clean.
// what names the text in the message, e.g. "audit event 3" or "lambda log".
func Check(what, text string, secrets ...string) error {
	fs := Scan(text, secrets...)
	if len(fs) == 0 {
		return nil
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return errors.New(what + " leaks secret material: " + strings.Join(parts, ", "))
}
