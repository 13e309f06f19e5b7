// Package leakcheck finds secret material in text that must not carry any: logs, error messages,
// audit events, HTTP bodies. Tests run it over everything the code under test wrote. It is an
// independent oracle: it shares no code with the redactor it checks (shared/redact), so that a
// regression there shows up here.
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
	PrivateKey    Kind = "private-key"    // a PEM private key header (any case), or a key's END line without it
	Secret        Kind = "secret"         // one of the given secret strings, raw or JSON- or URL-escaped
	CredentialURI Kind = "credential-uri" // scheme://user:password@ or user:password@host:port
	AdminPass     Kind = "admin-pass"     // a non-empty authentication_admin_pass value
	SecretField   Kind = "secret-field"   // a value given to a password-like key: password=..., "token":"..."
)

// Redaction markers: a value that is one of these is not a leak.
var markers = map[string]bool{"": true, "[redacted]": true, "[private key]": true, "null": true}

// Finding is one leak: its kind and the byte offset where it starts (for AdminPass and SecretField,
// the key name). It never holds the secret.
type Finding struct {
	Kind   Kind
	Offset int
}

func (f Finding) String() string { return fmt.Sprintf("%s at offset %d", f.Kind, f.Offset) }

// patterns are compiled per Scan: tests call it a few times per text, and the package keeps no state.
type patterns struct {
	keyLine, schemeUser, hostPort, schemeless, adminPass, field *regexp.Regexp
}

func compile() patterns {
	return patterns{
		keyLine: regexp.MustCompile(`(?i)-----\s*(BEGIN|END)[A-Z0-9 ]*PRIVATE KEY`),
		// scheme://user: ; the password after it is read in code.
		schemeUser: regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.-]*://[^\s/?#@:"'<>]*:`),
		hostPort:   regexp.MustCompile(`\A@[A-Za-z0-9.-]+:[0-9]+`),
		// user:password@host:port without a scheme (host and port required, so prose does not match).
		schemeless: regexp.MustCompile(`(?:^|[\s"'=(,;<\[{])([A-Za-z0-9_.%+~-]+):(\S+?)@[A-Za-z0-9.-]+:[0-9]+`),
		adminPass:  regexp.MustCompile(`(?i)authentication_admin_pass(?:\\?["'])?\s*[:=]\s*(\\?["'])?([^"'\s\\,}&]*)`),
		// name=value, "name":"value", \"name\":\"value\". Bare "secret" only as secret=value: in JSON
		// this project's logs and events use "secret" for a secret's name.
		field: regexp.MustCompile(`(?i)(?:^|[^a-z0-9_.+/-]|\\[nrt])((?:[a-z0-9]+[_.-])*(?:password|passwd|passphrase|pwd|pass|token|secret_?key|api_?key|client_?key|private_?key)|secret)(\\?["'])?\s*([:=])\s*(\\?["'])?`),
	}
}

// Scan returns every leak in text, ordered by offset. secrets are the passwords (or other values) the
// caller knows and that must not appear; empty ones are ignored. The text's redaction markers
// ("[redacted]", "[private key]") are not leaks.
func Scan(text string, secrets ...string) []Finding {
	p := compile()
	var out []Finding
	add := func(k Kind, offset int) { out = append(out, Finding{Kind: k, Offset: offset}) }

	open := false // inside a key block whose BEGIN was reported
	for _, m := range p.keyLine.FindAllStringSubmatchIndex(text, -1) {
		if strings.EqualFold(text[m[2]:m[3]], "BEGIN") {
			add(PrivateKey, m[0])
			open = true
		} else if !open {
			add(PrivateKey, m[0]) // the rest of a key whose BEGIN line was cut off
		} else {
			open = false
		}
	}

	for _, m := range p.schemeUser.FindAllStringIndex(text, -1) {
		if credentialAfter(p, text, m[1]) {
			add(CredentialURI, m[0])
		}
	}
	for _, m := range p.schemeless.FindAllStringSubmatchIndex(text, -1) {
		if pw := text[m[4]:m[5]]; !markers[pw] && !strings.HasPrefix(pw, "//") && !strings.Contains(pw, "://") {
			add(CredentialURI, m[2])
		}
	}

	for _, m := range p.adminPass.FindAllStringSubmatchIndex(text, -1) {
		if !markers[text[m[4]:m[5]]] {
			add(AdminPass, m[0])
		}
	}
	for _, m := range p.field.FindAllStringSubmatchIndex(text, -1) {
		name := strings.ToLower(group(text, m, 1))
		quotedName, sep, quote := group(text, m, 2) != "", group(text, m, 3), group(text, m, 4)
		switch {
		case strings.HasSuffix(name, "admin_pass"):
			continue // AdminPass
		case name == "secret" && sep != "=":
			continue
		case quotedName && quote == "":
			continue // a JSON value that is not a string
		case !quotedName && quote == "" && sep == ":":
			continue // "name: ..." in prose describes a field ("field password: missing")
		}
		if v := fieldValue(text[m[1]:], quote); !markers[v] {
			add(SecretField, m[2])
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
				add(Secret, i+j)
				i += j + len(form)
			}
		}
	}
	return dedupe(out)
}

// group returns submatch n of m in text, or "" when it did not take part in the match.
func group(text string, m []int, n int) string {
	if m[2*n] < 0 {
		return ""
	}
	return text[m[2*n]:m[2*n+1]]
}

// credentialAfter reports whether the text after "scheme://user:" at i holds a password: characters
// up to an '@' in the same word, or, for a password holding spaces, up to an '@' with a host:port
// after it within 64 bytes on the same line (no other URI in between). "[redacted]" is not one.
func credentialAfter(p patterns, text string, i int) bool {
	line := text[i:]
	if j := strings.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	word := line
	if j := strings.IndexAny(word, " \t"); j >= 0 {
		word = word[:j]
	}
	if at := strings.LastIndexByte(word, '@'); at >= 0 {
		return !markers[word[:at]]
	}
	window := line[:min(len(line), 64)]
	for at := strings.IndexByte(window, '@'); at >= 0; {
		if strings.Contains(window[:at], "://") {
			return false
		}
		if p.hostPort.MatchString(line[at:]) {
			return !markers[line[:at]]
		}
		next := strings.IndexByte(window[at+1:], '@')
		if next < 0 {
			break
		}
		at += 1 + next
	}
	return false
}

// fieldValue reads the value after a key's separator: a quoted string up to its closing quote (or
// the end), or an unquoted run up to whitespace, a quote, '&' or ','.
func fieldValue(rest, quote string) string {
	if quote != "" {
		if j := strings.Index(rest, quote); j >= 0 {
			return rest[:j]
		}
		return rest
	}
	if j := strings.IndexAny(rest, " \t\r\n\"'&,;\\"); j >= 0 {
		return rest[:j]
	}
	return rest
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
