// Package redact removes secret material from text and values before they reach a log line, an
// error message, an API response or an audit event. It is the project's one redactor: every other
// package that redacts delegates here.
//
// What goes: private keys of every PEM kind (PKCS#1, PKCS#8, EC, OpenSSH, encrypted, any header
// case, also inside JSON with escaped newlines), the password of a URI with or without a scheme
// (the user and host stay: operators need them), the values of password-like keys (key=value,
// key: value, "key":"value", also in escaped JSON) and HTTP Basic/Bearer credentials. What stays:
// certificates, fingerprints, URIs without a password and ordinary prose.
//
// Where text is ambiguous the redactor removes more rather than leak: a URI's password may hold
// spaces and '@', so it runs to the last '@' on the line, and "https://h:9443/v1 for ops@corp.com"
// loses "9443/v1 for ops". Known limits: a password holding a line break or "://"; without a
// scheme, a password holding whitespace; an unquoted key=value value holding a quote; a bare
// base64 key body with neither BEGIN nor END line.
package redact

import (
	"regexp"
	"strings"
	"sync"
)

// Marker replaces a password or other secret value; the key or the URI's user and host around it stay.
const Marker = "[redacted]"

// KeyMarker replaces a whole private key PEM block.
const KeyMarker = "[private key]"

// String returns s without secret material. It is idempotent: String(String(s)) == String(s).
func String(s string) string { return patterns().redact(s) }

// redactor holds the compiled patterns: built once per process, on first use. Scanning is done in
// code, and the patterns only check short candidates the scan found, so that the cost stays linear
// and small on long texts (regular expressions run over a whole text managed about 1 MB/s).
type redactor struct {
	keyBegin    *regexp.Regexp // after a run of dashes: BEGIN ... PRIVATE KEY
	keyEnd      *regexp.Regexp // after a run of dashes: END ... PRIVATE KEY ... and its closing dashes
	secretName  *regexp.Regexp // a whole key name, in text, whose value is secret
	secretField *regexp.Regexp // a whole map key, in Value, whose string value is secret
	authScheme  *regexp.Regexp // Basic/Bearer credentials
}

var patterns = sync.OnceValue(func() *redactor {
	return &redactor{
		keyBegin: regexp.MustCompile(`(?i)\ABEGIN[A-Z0-9 ]*PRIVATE KEY`),
		keyEnd:   regexp.MustCompile(`(?i)\AEND[A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-{3,}`),
		// A name may carry a prefix ending in '_', '.' or '-': db_password, x-api-key,
		// authentication_admin_pass.
		secretName: regexp.MustCompile(`\A(?:[a-z0-9]+[_.-])*(?:pass(?:word|wd|phrase)?|pwd|token|secret(?:_?(?:key|string))?|api_?key|client_?key|private_?key|access_?token|key)\z`),
		// Bare "secret" and "key" are left out: as map keys in this project they name things
		// ("secret": a secret's name), and Value redacts the strings under them anyway.
		secretField: regexp.MustCompile(`(?i)\A(?:[a-z0-9]+[_.-])*(?:pass(?:word|wd|phrase)?|pwd|token|secret_?(?:key|string)|api_?key|client_?key|private_?key|access_?token)\z`),
		authScheme:  regexp.MustCompile(`\b(Basic|Bearer|basic|bearer|BASIC|BEARER) ([A-Za-z0-9+/=._~-]+)`),
	}
})

func (r *redactor) redact(s string) string {
	if strings.Contains(s, "---") {
		s = r.privateKeys(s)
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = uris(s)
		s = schemelessURIs(s)
	}
	if strings.ContainsAny(s, ":=") {
		s = r.pairs(s)
	}
	if strings.Contains(s, "asic ") || strings.Contains(s, "earer ") || strings.Contains(s, "ASIC ") || strings.Contains(s, "EARER ") {
		s = r.authScheme.ReplaceAllStringFunc(s, func(m string) string {
			scheme, token, _ := strings.Cut(m, " ")
			if strings.Trim(token, "abcdefghijklmnopqrstuvwxyz") == "" {
				return m // a plain word, as in "Basic authentication failed"
			}
			return scheme + " " + Marker
		})
	}
	return s
}

// editor builds a copy of s with some ranges replaced, in increasing order.
type editor struct {
	s    string
	b    strings.Builder
	done int // s[:done] is written
}

func (e *editor) replace(start, end int, with string) {
	if e.b.Cap() == 0 {
		e.b.Grow(len(e.s))
	}
	e.b.WriteString(e.s[e.done:start])
	e.b.WriteString(with)
	e.done = end
}

func (e *editor) String() string {
	if e.done == 0 {
		return e.s
	}
	e.b.WriteString(e.s[e.done:])
	return e.b.String()
}

// privateKeys replaces every PEM private key block, from its BEGIN line through its END line, with
// KeyMarker: a block cut short (no END line) to the end of the text, and a block whose BEGIN line was
// cut off from the base64 run before its END line (spaces are not part of a key body, so the prose
// before it stays). Header case and escaping (\n in JSON) do not matter.
func (r *redactor) privateKeys(s string) string {
	e := editor{s: s}
	keyStart := -1 // where the open block began, if one is open
	for i := 0; ; {
		j := strings.Index(s[i:], "---")
		if j < 0 {
			break
		}
		p := i + j
		q := p + 3
		for q < len(s) && s[q] == '-' {
			q++
		}
		i = q
		window := s[q:min(len(s), q+200)]
		after := strings.TrimLeft(window, " \t\r\n")
		if after == "" || (after[0]|0x20) != 'b' && (after[0]|0x20) != 'e' {
			continue // neither BEGIN nor END: a certificate's closing dashes, a rule line
		}
		if r.keyBegin.MatchString(after) {
			if keyStart < 0 {
				keyStart = p
			}
			continue
		}
		loc := r.keyEnd.FindStringIndex(after)
		if loc == nil {
			continue
		}
		end := q + len(window) - len(after) + loc[1]
		for end < len(s) && s[end] == '-' {
			end++
		}
		start := keyStart
		if start < 0 {
			start = p // an END line without its BEGIN: the base64 run before it goes too
			for start > e.done && isKeyBody(s[start-1]) {
				start--
			}
		}
		e.replace(start, end, KeyMarker)
		keyStart, i = -1, end
	}
	if keyStart >= 0 {
		e.replace(keyStart, len(s), KeyMarker)
	}
	return e.String()
}

// isKeyBody reports whether c can be part of a PEM body: base64, a line break, or the backslash
// and letter of an escaped one.
func isKeyBody(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n' || c == '\t' || c == '\\'
}

// uris replaces the password of every scheme://user:password@host with Marker. A password may hold
// any character, '@' and spaces included, so the user information runs to the last '@' before the
// URI's end: the end of the line, the next URI, or, for a URI that opens a quoted string, the
// quote that closes it. When text after a URI holds an '@' on the same line, more than the password
// goes: a leak is worse than a lost word.
func uris(s string) string {
	type uri struct{ start, authority int } // scheme start, and just after "://"
	var found []uri
	for i := 0; ; {
		j := strings.Index(s[i:], "://")
		if j < 0 {
			break
		}
		p := i + j
		i = p + 3
		start := p
		for start > 0 && isSchemeChar(s[start-1]) {
			start--
		}
		for start < p && !isLetter(s[start]) {
			start++
		}
		if start == p || start > 0 && (s[start-1] == '/' || s[start-1] == '@') {
			continue // no scheme, or inside another URI's path or user information
		}
		found = append(found, uri{start, p + 3})
	}
	e := editor{s: s}
	for n, u := range found {
		start := u.authority
		if start < e.done {
			continue
		}
		end := len(s)
		if n+1 < len(found) {
			end = found[n+1].start
		}
		if j := strings.IndexAny(s[start:end], "\r\n"); j >= 0 {
			end = start + j
		}
		if q, k, ok := openingQuote(s, u.start); ok {
			if j := closingQuote(s[start:end], q, k); j >= 0 {
				end = start + j
			}
		}
		at := strings.LastIndexByte(s[start:end], '@')
		if at < 0 {
			continue
		}
		colon := strings.IndexByte(s[start:start+at], ':')
		if colon < 0 {
			continue // a user without a password
		}
		if pw := s[start+colon+1 : start+at]; pw == "" || pw == Marker {
			continue
		}
		e.replace(start+colon+1, start+at, Marker)
	}
	return e.String()
}

// schemelessURIs replaces the password of user:password@host (no scheme) with Marker. Without a
// scheme to anchor it, the password is taken to hold no whitespace: it runs from the first ':' after
// a user name to the last '@' of its word that a host follows.
func schemelessURIs(s string) string {
	e := editor{s: s}
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '@')
		if j < 0 {
			break
		}
		wordStart := i + j
		for wordStart > e.done && !isSpace(s[wordStart-1]) {
			wordStart--
		}
		wordEnd := i + j
		for wordEnd < len(s) && !isSpace(s[wordEnd]) {
			wordEnd++
		}
		i = wordEnd
		// The last '@' of the word with a host after it.
		at := -1
		for k := wordEnd - 2; k >= wordStart; k-- {
			if s[k] == '@' && isHostStart(s[k+1]) {
				at = k
				break
			}
		}
		if at < 0 {
			continue
		}
		// The first user name (a run of user characters after a boundary) followed by ':'.
		for k := wordStart; k < at; {
			if !isUserChar(s[k]) || (k > wordStart && !isUserBoundary(s[k-1])) {
				k++
				continue
			}
			end := k
			for end < at && isUserChar(s[end]) {
				end++
			}
			if end < at && s[end] == ':' && end+1 < at {
				if pw := s[end+1 : at]; pw != Marker && !strings.HasPrefix(pw, "//") {
					e.replace(end+1, at, Marker)
				}
				break
			}
			k = end
		}
	}
	return e.String()
}

func isLetter(c byte) bool     { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isSchemeChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '+' || c == '.' || c == '-' }
func isHostStart(c byte) bool  { return isLetter(c) || isDigit(c) || c == '[' }

func isUserChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == '+' || c == '%' || c == '~' || c == '-'
}

// isUserBoundary reports whether a user name may start after c: not inside a word, a path or a URI.
func isUserBoundary(c byte) bool { return !isUserChar(c) && c != '/' && c != ':' && c != '@' }

// describes reports whether word, after "name:" outside JSON, describes the field rather than
// holds its value: "field password: missing", "client request token: must be 32-64 characters".
func describes(word string) bool {
	switch strings.ToLower(word) {
	case "missing", "empty", "invalid", "required", "not", "must", "is", "are", "was", "holds", "has",
		"none", "null", "nil", "unset", "absent", "malformed", "wrong", "too", "expected", "trailing", "set", "no":
		return true
	}
	return false
}

// pairs replaces the values of secret keys: key=value, key: value, "key":"value", \"key\":\"value\".
// A quoted value goes up to its closing quote, however it is escaped; an unquoted one up to the next
// whitespace or quote. JSON values that are not strings (null, numbers, objects) stay. A name must
// start after a character that does not continue a word, a base64 run or a path (or after an escaped
// line break), so that names inside certificates, fingerprints and longer words do not match.
// It scans for the separators and reads each name backwards from there.
func (r *redactor) pairs(s string) string {
	e := editor{s: s}
	var v values
	for k := 0; k < len(s); k++ {
		if c := s[k]; c != ':' && c != '=' || k < e.done {
			continue
		}
		// Backwards: optional spaces, an optional closing quote (", ', \"), the name.
		end := k
		for end > 0 && (s[end-1] == ' ' || s[end-1] == '\t') {
			end--
		}
		quotedName := false
		if end > 0 && (s[end-1] == '"' || s[end-1] == '\'') {
			end, quotedName = end-1, true
			if end > 0 && s[end-1] == '\\' {
				end--
			}
		}
		start := end
		for start > e.done && isNameChar(s[start-1]) {
			start--
		}
		if start == end || !secretSuffix(s[start:end]) {
			continue
		}
		name := strings.ToLower(s[start:end])
		switch {
		case r.secretName.MatchString(name):
			if start > 0 && (s[start-1] == '+' || s[start-1] == '/') {
				continue // inside base64 or a path
			}
		case start > 0 && s[start-1] == '\\' && (name[0] == 'n' || name[0] == 'r' || name[0] == 't') &&
			r.secretName.MatchString(name[1:]):
			name = name[1:] // after an escaped line break: "\npassword=..."
		default:
			continue
		}
		equals := s[k] == '='
		i := k + 1
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		vEnd, quote := v.end(s, i)
		if vEnd <= i {
			continue // no value
		}
		val := s[i:vEnd]
		inner := val[len(quote) : len(val)-closingLen(val, quote)]
		switch {
		case inner == "" || inner == Marker || inner == KeyMarker:
			continue
		case quotedName && quote == "":
			continue // a JSON value that is not a string: null, a number, an object
		case !quotedName && quote == "" && !equals && (name == "key" || describes(inner)):
			continue // "name: value" in prose: "private key: ...", "field password: missing"
		}
		with := quote + Marker
		if closingLen(val, quote) > 0 {
			with += quote
		}
		e.replace(i, vEnd, with)
		k = vEnd - 1
	}
	return e.String()
}

// secretSuffix is a quick check before secretName: whether name ends the way a secret key name does.
func secretSuffix(name string) bool {
	if len(name) < 3 {
		return false
	}
	tail := strings.ToLower(name[max(0, len(name)-6):])
	for _, w := range []string{"pass", "word", "wd", "phrase", "pwd", "token", "secret", "key", "string"} {
		if strings.HasSuffix(tail, w) {
			return true
		}
	}
	return false
}

func isNameChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == '-'
}

// values parses the values of pairs, left to right. It remembers where the last unquoted value
// ended: a later one starting before that point ends there too, which keeps a text full of pairs
// inside one long unquoted run linear.
type values struct{ from, stop int }

// end parses the value starting at s[i]: a quoted string ("...", '...', \"...\" in escaped JSON) up
// to its closing quote or the end of s, or an unquoted run up to whitespace, a quote or an escaped
// quote. It returns the end and the opening quote ("" when unquoted).
func (v *values) end(s string, i int) (end int, quote string) {
	rest := s[i:]
	for _, q := range []string{`\"`, `"`, `'`} {
		if !strings.HasPrefix(rest, q) {
			continue
		}
		k := len(q) - 1 // backslashes before the quote
		j := closingQuote(rest[len(q):], q[k], k)
		if j < 0 {
			return len(s), q
		}
		return i + len(q) + j + len(q), q
	}
	if i > v.from && i < v.stop {
		return v.stop, ""
	}
	v.from, v.stop = i, len(s)
	for j := 0; j < len(rest); j++ {
		c := rest[j]
		if isSpace(c) || c == '"' || c == '\'' || c == '\\' && j+1 < len(rest) && (rest[j+1] == '"' || rest[j+1] == '\'') {
			v.stop = i + j
			break
		}
	}
	return v.stop, ""
}

// closingLen is the length of val's closing quote: len(quote) when val ends with it, else 0 (a
// quoted value cut short by the end of the text).
func closingLen(val, quote string) int {
	if quote != "" && len(val) >= 2*len(quote) && strings.HasSuffix(val, quote) {
		return len(quote)
	}
	return 0
}

// openingQuote reports whether the URI starting at s[i] opens a quoted string: the quote character
// and how many backslashes escape it (0 in JSON, 1 in JSON inside a JSON string).
func openingQuote(s string, i int) (q byte, backslashes int, ok bool) {
	if i == 0 {
		return 0, 0, false
	}
	switch q = s[i-1]; q {
	case '"', '\'', '`':
	default:
		return 0, 0, false
	}
	for j := i - 2; j >= 0 && s[j] == '\\'; j-- {
		backslashes++
	}
	if backslashes > 3 {
		return 0, 0, false
	}
	return q, backslashes, true
}

// closingQuote returns the index in s of the quote q that closes a string opened by q escaped with
// k backslashes, or -1. Each level of escaping doubles the backslashes and adds one, so at level k the
// closing quote follows r backslashes with r mod 2^(k+1) == 2^k-1, and a quote inside the string
// follows any other count (for k=0: an even count closes, an odd one escapes).
func closingQuote(s string, q byte, k int) int {
	mod, want := 2<<k, (1<<k)-1
	for j := 0; j < len(s); j++ {
		if s[j] != q {
			continue
		}
		r := 0
		for p := j - 1; p >= 0 && s[p] == '\\'; p-- {
			r++
		}
		if r%mod == want {
			return j - want
		}
	}
	return -1
}
