package audit

import (
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/redact"
)

// MaxMessageLen caps (in bytes) a message after Redact, so one event cannot carry a whole response body.
const MaxMessageLen = 1000

const truncatedMark = "...[truncated]"

// Redact prepares a free-text message (an error, an API response) for an audit event or a log:
// redact.String removes its secret material (private keys become "[private key]", URI passwords and
// the values of password-like keys "[redacted]", the URI's user and host stay), certificate PEM
// blocks become "[certificate]" (not secret, but events name certificates by fingerprint instead),
// and the result is cut to at most MaxMessageLen bytes.
func Redact(msg string) string {
	return truncate(elideCertificates(redact.String(msg)), MaxMessageLen)
}

// certificatePatterns match a certificate PEM block (one cut short runs to the end of the text) and
// the end of one whose BEGIN line was cut off. Compiled once, on first use.
var certificatePatterns = sync.OnceValue(func() [2]*regexp.Regexp {
	return [2]*regexp.Regexp{
		regexp.MustCompile(`(?s)-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----.*?(?:-----END (?:TRUSTED |X509 )?CERTIFICATE-----|\z)`),
		regexp.MustCompile(`(?s)\A.*-----END (?:TRUSTED |X509 )?CERTIFICATE-----`),
	}
})

func elideCertificates(msg string) string {
	if !strings.Contains(msg, "CERTIFICATE-----") {
		return msg
	}
	p := certificatePatterns()
	msg = p[0].ReplaceAllLiteralString(msg, "[certificate]")
	return p[1].ReplaceAllLiteralString(msg, "[certificate]")
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

// redactEvent is the Recorder's last line of defence: callers should already have redacted what they
// put in an event. Every string field goes through redact.String, free text (the error message, the
// changes, string details) through Redact, and every other detail value through redact.Value. The
// caller's pointers, slices and Details map are not modified: changed parts are copies.
func redactEvent(e *Event) {
	s := redact.String
	e.Actor, e.Step, e.Cluster = s(e.Actor), s(e.Step), s(e.Cluster)
	e.Trigger.Kind, e.Trigger.EventID = s(e.Trigger.Kind), s(e.Trigger.EventID)
	if e.Link != nil {
		l := *e.Link
		l.SourceCluster, l.DestinationCluster = s(l.SourceCluster), s(l.DestinationCluster)
		e.Link = &l
	}
	e.Before, e.After = redactState(e.Before), redactState(e.After)
	if e.Certificate != nil {
		c := redactSummary(*e.Certificate)
		e.Certificate = &c
	}
	if e.Error != nil {
		ei := ErrorInfo{Code: s(e.Error.Code), Message: Redact(e.Error.Message)}
		e.Error = &ei
	}
	if len(e.Changes) > 0 {
		changes := make([]string, len(e.Changes))
		for i, c := range e.Changes {
			changes[i] = Redact(c)
		}
		e.Changes = changes
	}
	if len(e.Details) > 0 {
		red, _ := redact.Value(e.Details).(map[string]any) // a map[string]any stays one
		details := make(map[string]any, len(red))
		for k, v := range red {
			if str, ok := v.(string); ok {
				v = Redact(str) // also caps the length
			}
			details[k] = v
		}
		e.Details = details
	}
}

func redactState(st *State) *State {
	if st == nil {
		return nil
	}
	c := *st
	s := redact.String
	c.TLSMode, c.ClientAuthentication, c.LinkStatus = s(c.TLSMode), s(c.ClientAuthentication), s(c.LinkStatus)
	if c.TrustedCerts != nil {
		c.TrustedCerts = make([]certs.Summary, len(st.TrustedCerts))
		for i, t := range st.TrustedCerts {
			c.TrustedCerts[i] = redactSummary(t)
		}
	}
	if c.ServerCert != nil {
		sc := redactSummary(*c.ServerCert)
		c.ServerCert = &sc
	}
	return &c
}

func redactSummary(c certs.Summary) certs.Summary {
	c.Fingerprint, c.Subject = redact.String(c.Fingerprint), redact.String(c.Subject)
	return c
}
