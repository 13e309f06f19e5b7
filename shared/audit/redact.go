package audit

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxMessageLen caps (in bytes) a message after Redact, so one event cannot carry a whole response body.
const MaxMessageLen = 1000

const truncatedMark = "...[truncated]"

// redactor is the compiled set of patterns Redact applies, in order. It is built per call of
// newRedactor, not held in a package variable: the team keeps no package-level state.
type redactor struct {
	privateKey    *regexp.Regexp
	keyTail       *regexp.Regexp
	certificate   *regexp.Regexp
	certTail      *regexp.Regexp
	uriUserinfo   *regexp.Regexp
	secretKeyword *regexp.Regexp
	authScheme    *regexp.Regexp
}

func newRedactor() redactor {
	return redactor{
		// A block cut short (no END line) is removed to the end of the text.
		privateKey: regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`),
		// A text that starts inside a key block: everything up to its END line goes.
		keyTail:     regexp.MustCompile(`(?s)\A.*-----END [A-Z0-9 ]*PRIVATE KEY-----`),
		certificate: regexp.MustCompile(`(?s)-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----.*?(?:-----END (?:TRUSTED |X509 )?CERTIFICATE-----|\z)`),
		certTail:    regexp.MustCompile(`(?s)\A.*-----END (?:TRUSTED |X509 )?CERTIFICATE-----`),
		// scheme://userinfo@ ; greedy up to the last '@' of the authority, so a password holding '@'
		// is removed whole.
		uriUserinfo: regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@`),
		// key=value, key: value, "key":"value" and the same inside escaped JSON (\"key\":\"value\"),
		// for key names that hold secrets. The value is a quoted string (possibly cut short) or a
		// run of non-space characters.
		secretKeyword: regexp.MustCompile(`(?i)((?:\\?["'])?[a-z0-9_.-]*(?:password|passwd|pass|secret|secret_?string|private_key|client_key|api_key|apikey)(?:\\?["'])?\s*[:=]\s*)` +
			`(\\"(?:[^\\]|\\[^"])*?(?:\\"|\z)|"(?:[^"\\]|\\.)*(?:"|\z)|'[^']*(?:'|\z)|[^\s"'\\]+)`),
		// HTTP credentials as printed from a header: "Basic <base64>", "Bearer <token>".
		authScheme: regexp.MustCompile(`\b(Basic|Bearer) ([A-Za-z0-9+/=._~-]+)`),
	}
}

// Redact removes secret material from a free-text message (an error, an API response) before it goes
// into an audit event or a log: private key PEM blocks become "[private key]", certificate PEM blocks
// "[certificate]" (events name certificates by fingerprint instead), URI userinfo "[redacted]"
// (redis://admin:pass@host becomes redis://[redacted]@host), and the values of password-like keys
// "[redacted]", as do Basic and Bearer credentials. The result is at most MaxMessageLen bytes.
//
// Redact compiles its patterns on every call (about 0.1 ms); a Recorder compiles them once.
func Redact(msg string) string { return newRedactor().redact(msg) }

func (r redactor) redact(msg string) string {
	msg = r.privateKey.ReplaceAllLiteralString(msg, "[private key]")
	msg = r.keyTail.ReplaceAllLiteralString(msg, "[private key]")
	msg = r.certificate.ReplaceAllLiteralString(msg, "[certificate]")
	msg = r.certTail.ReplaceAllLiteralString(msg, "[certificate]")
	msg = r.uriUserinfo.ReplaceAllString(msg, "${1}[redacted]@")
	msg = r.secretKeyword.ReplaceAllStringFunc(msg, func(m string) string {
		sub := r.secretKeyword.FindStringSubmatch(m)
		key, val := sub[1], sub[2]
		switch {
		case strings.HasPrefix(val, `\"`):
			return key + `\"[redacted]\"`
		case strings.HasPrefix(val, `"`):
			return key + `"[redacted]"`
		case strings.HasPrefix(val, `'`):
			return key + `'[redacted]'`
		}
		return key + "[redacted]"
	})
	msg = r.authScheme.ReplaceAllStringFunc(msg, func(m string) string {
		scheme, token, _ := strings.Cut(m, " ")
		if strings.Trim(token, "abcdefghijklmnopqrstuvwxyz") == "" {
			return m // a plain word, as in "Basic authentication failed"
		}
		return scheme + " [redacted]"
	})
	return truncate(msg, MaxMessageLen)
}

// truncate cuts s to at most max bytes on a rune boundary, marking the cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + truncatedMark
}
