package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// RetryPolicy is capped exponential backoff with full jitter: before retry n the client sleeps a
// random duration in [0, min(Max, Initial*Multiplier^(n-1))]. It never sleeps past the context
// deadline: when the next sleep would cross it, the call gives up at once.
//
// Retried: 409, 5xx and network errors. Never retried: other 4xx and TLS verification failures.
type RetryPolicy struct {
	Initial    time.Duration // default 200ms
	Max        time.Duration // default 5s (or Initial, if larger)
	Multiplier float64       // default 2; must be >= 1
	// MaxAttempts counts the first try; 0 means until the context deadline. A context without a
	// deadline then gets attemptsWithoutDeadline attempts, so a forgotten deadline cannot spin forever.
	MaxAttempts int
	// ConnectAttempts is how many attempts in a row may fail to connect at all (refused, reset or
	// dead TLS handshake) before the call reports the cluster unreachable; 0 means 3. A cluster that
	// is down then fails in about a second instead of using the call's whole time budget.
	ConnectAttempts int
}

// Defaults.
const (
	defaultInitial          = 200 * time.Millisecond
	defaultMax              = 5 * time.Second
	defaultMultiplier       = 2.0
	attemptsWithoutDeadline = 10
	defaultConnectAttempts  = 3
)

// withDefaults fills zero fields and rejects nonsense values. ConnectAttempts keeps its zero: the
// call resolves it.
func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	if p.Initial < 0 || p.Max < 0 || p.MaxAttempts < 0 || p.ConnectAttempts < 0 {
		return p, errors.New("retry policy: durations, MaxAttempts and ConnectAttempts must not be negative")
	}
	if p.Multiplier != 0 && p.Multiplier < 1 {
		return p, errors.New("retry policy: Multiplier must be at least 1")
	}
	if p.Initial == 0 {
		p.Initial = defaultInitial
	}
	if p.Multiplier == 0 {
		p.Multiplier = defaultMultiplier
	}
	if p.Max == 0 {
		p.Max = max(defaultMax, p.Initial)
	}
	if p.Max < p.Initial {
		return p, errors.New("retry policy: Max must not be smaller than Initial")
	}
	return p, nil
}

// backoff is the upper bound of the sleep before retry number attempt (1 = after the first try).
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := float64(p.Initial)
	for i := 1; i < attempt && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	if d >= float64(p.Max) {
		return p.Max
	}
	return time.Duration(d)
}

// fullJitter picks uniformly in [0, limit].
func fullJitter(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transient reports whether a transport error (the request failed without an HTTP status, or the
// body broke off) may succeed on another try: refused or reset connections, EOF, per-attempt
// timeouts. Failures another try cannot fix are excluded: an untrusted or mismatched certificate,
// a peer that does not speak TLS or rejects our handshake, a host name that does not exist.
// The caller checks its own context first, so a cancelled call is never retried.
func transient(err error) bool {
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownCA   x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		recordErr   tls.RecordHeaderError
		alertErr    tls.AlertError
		dnsErr      *net.DNSError
		systemRoots x509.SystemRootsError
	)
	switch {
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &invalidErr), errors.As(err, &recordErr), errors.As(err, &alertErr),
		errors.As(err, &systemRoots):
		return false
	case errors.As(err, &dnsErr):
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	return true
}
