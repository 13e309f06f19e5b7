// Package cluster is the Redis Enterprise REST API client: HTTPS pinned to the cluster's own API
// certificate, basic auth, retries with capped exponential backoff inside the caller's deadline, and
// failures reported as *reapi.Error. It never puts credentials or request bodies in errors or logs.
package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// Config describes how to reach one cluster's REST API.
type Config struct {
	Name     string // registry name of the cluster, used only in error messages
	URL      string // https://host:9443; http and URLs with userinfo are rejected
	Username string
	Password string
	// CACert is the PEM of the cluster's API certificate (or its CA). It is the only trusted root:
	// system roots are not consulted and verification is never skipped.
	CACert string
	Retry  RetryPolicy // zero value = defaults (see RetryPolicy)
	// HTTPClient is optional (tests). Its Transport must be nil or an *http.Transport; the client
	// works on a copy whose TLS config is replaced by the pinned one.
	HTTPClient *http.Client
	// Logger is optional; it gets one debug line per attempt, never credentials or bodies.
	Logger *slog.Logger
}

// String leaves the password out, so a Config printed by mistake leaks nothing.
func (c Config) String() string {
	return fmt.Sprintf("cluster.Config{Name:%q Username:%q Password:<redacted>}", c.Name, c.Username)
}

// GoString does the same for %#v.
func (c Config) GoString() string { return c.String() }

// Client calls one cluster's REST API. It is safe for concurrent use.
type Client struct {
	name     string
	base     url.URL
	username string
	password string
	hc       *http.Client
	retry    RetryPolicy
	log      *slog.Logger

	// legacyCertAPI is set once the cluster answered 404/405 to PUT /v1/cluster/certificates
	// (older than 7.22.2), so later certificate updates go straight to /v1/cluster/update_cert.
	legacyCertAPI atomic.Bool

	// Test hooks; New sets the real implementations.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(limit time.Duration) time.Duration
	now    func() time.Time
}

// Size limits on what we read from the server.
const (
	maxResponseBody = 64 << 20 // a DB list of thousands of databases stays well below this
	maxErrorBody    = 64 << 10
	maxMessageLen   = 300 // runes kept of a server error message
	maxCodeLen      = 100
)

// New checks cfg and returns a Client. Errors never echo the URL or the password.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("new client for cluster %q: %w", cfg.Name, err)
	}
	name := cfg.Name
	if name == "" {
		name = base.Host
	}
	fail := func(format string, a ...any) (*Client, error) {
		return nil, fmt.Errorf("new client for cluster %q: %s", name, fmt.Sprintf(format, a...))
	}
	if cfg.Username == "" || cfg.Password == "" {
		return fail("username and password are required")
	}
	pool, err := pinnedPool(cfg.CACert)
	if err != nil {
		return fail("%v", err)
	}
	retry, err := cfg.Retry.withDefaults()
	if err != nil {
		return fail("%v", err)
	}
	hc, err := pinnedHTTPClient(cfg.HTTPClient, pool)
	if err != nil {
		return fail("%v", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		name:     name,
		base:     *base,
		username: cfg.Username,
		password: cfg.Password,
		hc:       hc,
		retry:    retry,
		log:      logger,
		sleep:    sleepCtx,
		jitter:   fullJitter,
		now:      time.Now,
	}, nil
}

// Name is the cluster's registry name (or its host when Config.Name was empty).
func (c *Client) Name() string { return c.name }

// String names the client without credentials.
func (c *Client) String() string { return "cluster.Client{" + c.name + "}" }

// GoString does the same for %#v.
func (c *Client) GoString() string { return c.String() }

// parseBaseURL accepts only https://host[:port][/]. Its errors never include the input, which may
// hold a password.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("URL is required")
	}
	if !strings.HasPrefix(strings.ToLower(raw), "https://") {
		return nil, errors.New("URL must use https (the API is only reached over TLS)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("URL is not a valid URL") // url.Error would echo the input
	}
	switch {
	case u.User != nil:
		return nil, errors.New("URL must not contain credentials: use Username and Password")
	case u.Opaque != "" || u.Hostname() == "":
		return nil, errors.New("URL has no host")
	case u.Path != "" && u.Path != "/":
		return nil, errors.New("URL must not have a path")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, errors.New("URL must not have a query or fragment")
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// pinnedPool builds a pool holding exactly the certificates in pemText. Anything that is not a
// certificate (a private key pasted by mistake, garbage) is refused rather than skipped.
func pinnedPool(pemText string) (*x509.CertPool, error) {
	if strings.TrimSpace(pemText) == "" {
		return nil, errors.New("CACert is required: the PEM of the cluster API certificate to pin")
	}
	pool := x509.NewCertPool()
	rest := []byte(pemText)
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("CACert PEM block %d is a %q, not a CERTIFICATE", n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CACert PEM block %d is not a valid certificate: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("CACert holds no PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("CACert has trailing data after its last certificate")
	}
	return pool, nil
}

// pinnedHTTPClient returns a copy of base (or a new client) whose transport trusts only pool.
func pinnedHTTPClient(base *http.Client, pool *x509.CertPool) (*http.Client, error) {
	var hc http.Client
	var tr *http.Transport
	if base != nil {
		hc = *base
		switch t := base.Transport.(type) {
		case nil:
			tr = newTransport()
		case *http.Transport:
			tr = t.Clone()
		default:
			return nil, fmt.Errorf("HTTPClient.Transport is a %T; only *http.Transport can be pinned", t)
		}
	} else {
		tr = newTransport()
	}
	// Custom TLS dialers would bypass TLSClientConfig, so they go.
	tr.DialTLSContext = nil
	//lint:ignore SA1019 cleared precisely because the deprecated hook would bypass the pinned config
	tr.DialTLS = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	hc.Transport = tr
	// The API never redirects; following one could carry basic auth somewhere else.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // TLS stays end to end through a proxy
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// newRequest builds one attempt of an API call. path is absolute and escaped ("/v1/bdbs/3"); query
// is already encoded.
func (c *Client) newRequest(ctx context.Context, method, path, query string, body []byte) (*http.Request, error) {
	u := c.base
	p, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad path: %w", method, path, err)
	}
	u.Path, u.RawPath = p, path
	u.RawQuery = query
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: build request: %w", method, path, err)
	}
	req.SetBasicAuth(c.username, c.password)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "replica-tls")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do runs an API call with retries and decodes a 2xx JSON response into out (when out is not nil).
//
// PUTs are retried like GETs, including after a timeout or a reset that may have happened once the
// server had the request: every PUT this client sends carries full desired values (a whole trust
// list, a whole replica_sources list, a certificate and its key), so applying it twice leaves the
// same state as applying it once. A 409 means the cluster refused it and is always safe to repeat.
func (c *Client) do(ctx context.Context, method, path, query string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode request body: %w", method, path, err)
		}
	}
	maxAttempts := c.retry.MaxAttempts
	if _, ok := ctx.Deadline(); !ok && maxAttempts == 0 {
		maxAttempts = attemptsWithoutDeadline
	}
	var lastAPIErr *reapi.Error
	for attempt := 1; ; attempt++ {
		retry, err := c.attempt(ctx, method, path, query, payload, out, attempt)
		if err == nil {
			return nil
		}
		var apiErr *reapi.Error
		isAPIErr := errors.As(err, &apiErr)
		if ctx.Err() != nil || !retry {
			if lastAPIErr != nil && !isAPIErr {
				// Keep the reason we were retrying visible (and reachable with errors.As).
				return fmt.Errorf("%w (after %d attempts; previous: %w)", err, attempt, lastAPIErr)
			}
			return err
		}
		if isAPIErr {
			lastAPIErr = apiErr
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		wait := c.jitter(c.retry.backoff(attempt))
		if deadline, ok := ctx.Deadline(); ok && !c.now().Add(wait).Before(deadline) {
			return fmt.Errorf("giving up after %d attempts: retrying in %s would pass the context deadline (%w): %w",
				attempt, wait.Round(time.Millisecond), context.DeadlineExceeded, err)
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "cluster api retry",
			slog.String("cluster", c.name), slog.String("method", method), slog.String("path", path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait))
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("giving up after %d attempts: %w: %w", attempt, serr, err)
		}
	}
}

// attempt makes one request and reports whether its failure is worth retrying.
func (c *Client) attempt(ctx context.Context, method, path, query string, payload []byte, out any, n int) (retry bool, err error) {
	req, err := c.newRequest(ctx, method, path, query, payload)
	if err != nil {
		return false, err
	}
	start := time.Now()
	status := 0
	defer func() {
		attrs := []slog.Attr{
			slog.String("cluster", c.name), slog.String("method", method), slog.String("path", path),
			slog.Int("status", status), slog.Int("attempt", n), slog.Duration("duration", time.Since(start)),
		}
		var apiErr *reapi.Error
		switch {
		case errors.As(err, &apiErr):
			attrs = append(attrs, slog.String("error_code", apiErr.Code))
		case err != nil:
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "cluster api call", attrs...)
	}()

	resp, err := c.hc.Do(req)
	if err != nil {
		// The *url.Error repeats the full URL; method and path say enough.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return transient(err), fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	status = resp.StatusCode
	if status < 200 || status > 299 {
		apiErr := c.apiError(method, path, resp)
		return apiErr.Retryable(), apiErr
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return transient(err), fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if len(data) > maxResponseBody {
		return false, fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponseBody)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return false, fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return false, nil
}

// apiError turns a non-2xx response into *reapi.Error. The body is expected to be
// {"error_code": ..., "message"|"description": ...}; anything else becomes a short text message.
func (c *Client) apiError(method, path string, resp *http.Response) *reapi.Error {
	e := &reapi.Error{Method: method, Path: path, StatusCode: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		ErrorCode   any `json:"error_code"`
		Message     any `json:"message"`
		Description any `json:"description"`
	}
	if err := json.Unmarshal(data, &body); err == nil {
		e.Code = c.scrub(textOf(body.ErrorCode), maxCodeLen)
		msg := textOf(body.Message)
		if msg == "" {
			msg = textOf(body.Description)
		}
		e.Message = c.scrub(msg, maxMessageLen)
		return e
	}
	e.Message = c.scrub(string(data), maxMessageLen)
	return e
}

// textOf renders a JSON value as text: strings as is, anything else in compact JSON.
func textOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// scrub makes server-provided text safe for errors and logs: no password (a server might echo a
// URI), no key material, single line, bounded length.
func (c *Client) scrub(s string, limit int) string {
	if strings.Contains(s, "PRIVATE KEY") {
		return "(withheld: the server's message contains key material)"
	}
	if c.password != "" {
		s = strings.ReplaceAll(s, c.password, "<redacted>")
	}
	s = strings.Join(strings.Fields(s), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "…"
	}
	return s
}
