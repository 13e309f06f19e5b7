// Package cluster is the Redis Enterprise REST API client: HTTPS pinned to the cluster's own API
// certificate, basic auth, retries with capped exponential backoff within a share of the caller's
// deadline, response bodies decoded as they stream in under a size cap, and failures reported as
// *reapi.Error (the API's answer) or *reapi.CallError (unreachable, timeout, partially applied,
// response too large). It never puts credentials or request bodies in errors or logs.
package cluster

import (
	"bytes"
	"cmp"
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
	"net/http/httptrace"
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

	// MaxResponseBytes caps the body of a successful response; a larger one fails with a
	// *reapi.CallError coded response_too_large, read no further than the cap. 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// CallShare is the largest fraction of the time left on ctx that one call and its retries may
	// use, so that one slow cluster cannot spend a whole Lambda invocation (0 means
	// DefaultCallShare; at most 1).
	CallShare float64
	// MaxCallTime caps one call and its retries whatever ctx allows, and bounds calls under a
	// context without deadline. 0 means DefaultMaxCallTime.
	MaxCallTime time.Duration
}

// Defaults of the resource bounds in Config.
const (
	// DefaultMaxResponseBytes: the largest response is GET /v1/bdbs with the reconciler's fields,
	// about 10 KiB per database that trusts a few certificates and has a few replica sources
	// (BenchmarkListFleetPeakHeap prints the measured size), so 16 MiB holds some 1,500 such databases,
	// while the fleet load's 8 lists in flight at once stay within half of a 256 MB Lambda.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultCallShare leaves the other half of the time to the rest of the fleet and to the
	// caller's own bookkeeping (audit events) after a cluster failed.
	DefaultCallShare = 0.5
	// DefaultMaxCallTime is long enough to ride out a database busy with an earlier change (409s),
	// short enough that a hung cluster costs a bounded part of a 15-minute Lambda.
	DefaultMaxCallTime = 2 * time.Minute
)

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

	maxResponse int64
	callShare   float64
	maxCallTime time.Duration

	// legacyCertAPI is set once the cluster answered 404/405 to PUT /v1/cluster/certificates
	// (older than 7.22.2), so later certificate updates go straight to /v1/cluster/update_cert.
	legacyCertAPI atomic.Bool

	calls, retries, writes atomic.Int64

	// Test hooks; New sets the real implementations.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(limit time.Duration) time.Duration
	now    func() time.Time
}

// Size limits on what we read from the server (successful bodies: Config.MaxResponseBytes).
const (
	maxErrorBody  = 64 << 10
	maxMessageLen = 300 // runes kept of a server error message
	maxCodeLen    = 100
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
	switch {
	case cfg.MaxResponseBytes < 0:
		return fail("MaxResponseBytes must not be negative")
	case cfg.CallShare < 0 || cfg.CallShare > 1:
		return fail("CallShare must be between 0 and 1")
	case cfg.MaxCallTime < 0:
		return fail("MaxCallTime must not be negative")
	}
	return &Client{
		name:        name,
		base:        *base,
		username:    cfg.Username,
		password:    cfg.Password,
		hc:          hc,
		retry:       retry,
		log:         logger,
		maxResponse: cmp.Or(cfg.MaxResponseBytes, DefaultMaxResponseBytes),
		callShare:   cmp.Or(cfg.CallShare, DefaultCallShare),
		maxCallTime: cmp.Or(cfg.MaxCallTime, DefaultMaxCallTime),
		sleep:       sleepCtx,
		jitter:      fullJitter,
		now:         time.Now,
	}, nil
}

// Stats are a client's counters since it was made, for metrics.
type Stats struct {
	Calls   int64 // API calls made, each counted once however many attempts it took (a WaitForDB poll is a call)
	Retries int64 // attempts beyond the first of each call
	Writes  int64 // calls that change the cluster: PUTs other than dry runs
}

// Stats reads the counters. It is safe to call while calls run.
func (c *Client) Stats() Stats {
	return Stats{Calls: c.calls.Load(), Retries: c.retries.Load(), Writes: c.writes.Load()}
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

// call is one API call: what to send, and how to read a 2xx answer.
type call struct {
	method, path string
	query        string // already encoded
	body         any    // nil: no body
	// decode reads a 2xx body; nil discards it. It gets io.EOF for an empty body, which the API
	// sends for some calls ("Some responses may have an empty body but indicate the response with
	// standard HTTP codes"): that is a success with a zero value, not a decode error.
	decode func(*json.Decoder) error
	write  bool // the call changes the cluster (a dry run does not)
}

// into decodes one JSON value into *dst, which is zeroed first: an empty body, or a retry after a
// body broke off, never leaves stale fields behind.
func into[T any](dst *T) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		var zero T
		*dst = zero
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

// listInto decodes a JSON array element by element, so the decoder buffers one element at a time
// instead of the whole list. each, when not nil, sees every element as it is decoded.
func listInto[T any](dst *[]T, each func(*T)) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		*dst = nil
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok == nil { // null
			return nil
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("want a JSON array, got %v", tok)
		}
		out := []T{}
		for dec.More() {
			var v T
			if err := dec.Decode(&v); err != nil {
				return midList(err)
			}
			if each != nil {
				each(&v)
			}
			out = append(out, v)
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return midList(err)
		}
		*dst = out
		return nil
	}
}

// midList turns the decoder's io.EOF at an element boundary ("[{...},") into the truncation it is:
// io.EOF alone means an empty body.
func midList(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// do runs an API call with retries within its time budget (see budget) and decodes a 2xx answer.
//
// PUTs are retried like GETs, including after a timeout or a reset that may have happened once the
// server had the request: every PUT this client sends carries full desired values (a whole trust
// list, a whole replica_sources list, a certificate and its key), so applying it twice leaves the
// same state as applying it once. A 409 means the cluster refused it and is always safe to repeat.
//
// Failures it classifies itself are *reapi.CallError: unreachable when the last attempts could not
// connect at all, timeout when the budget ran out otherwise.
func (c *Client) do(ctx context.Context, cl call) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("%s %s: encode request body: %w", cl.method, cl.path, err)
		}
	}
	c.calls.Add(1)
	if cl.write {
		c.writes.Add(1)
	}
	maxAttempts := c.retry.MaxAttempts
	if _, ok := ctx.Deadline(); !ok && maxAttempts == 0 {
		maxAttempts = attemptsWithoutDeadline
	}
	maxConnectFails := cmp.Or(c.retry.ConnectAttempts, defaultConnectAttempts)
	callCtx, cancel, budget := c.budget(ctx)
	defer cancel()
	classified := func(code string, err error) error {
		return &reapi.CallError{Code: code, Cluster: c.name, Method: cl.method, Path: cl.path, Err: err}
	}
	var lastAPIErr *reapi.Error
	connectFails := 0 // attempts in a row that got no connection
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			c.retries.Add(1)
		}
		res := c.attempt(callCtx, cl, payload, attempt)
		if res.err == nil {
			return nil
		}
		err := res.err
		var apiErr *reapi.Error
		isAPIErr := errors.As(err, &apiErr)
		if lastAPIErr != nil && !isAPIErr {
			// Keep the reason we were retrying visible (and reachable with errors.As).
			err = fmt.Errorf("%w (after %d attempts; previous: %w)", err, attempt, lastAPIErr)
		}
		if isAPIErr {
			lastAPIErr = apiErr
		}
		if res.noConn {
			connectFails++
		} else {
			connectFails = 0
		}
		// The code of a call that gives up: unreachable when the last attempt found no one to talk
		// to, timeout when time ran out on a cluster that does answer.
		timeUp := func(err error) error {
			if res.noConn {
				return classified(reapi.CodeUnreachable, err)
			}
			return classified(reapi.CodeTimeout, err)
		}
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return err
		case ctx.Err() != nil:
			return timeUp(err)
		case callCtx.Err() != nil:
			return timeUp(fmt.Errorf("the call's time budget of %s is spent (%w): %w", budget.Round(time.Millisecond), context.DeadlineExceeded, err))
		case !res.retry:
			if res.noConn && res.unreachable {
				return classified(reapi.CodeUnreachable, err)
			}
			return err
		case maxAttempts > 0 && attempt >= maxAttempts:
			err = fmt.Errorf("giving up after %d attempts: %w", attempt, err)
			if res.noConn {
				return classified(reapi.CodeUnreachable, err)
			}
			return err
		case connectFails >= maxConnectFails:
			return classified(reapi.CodeUnreachable, fmt.Errorf("giving up after %d attempts in a row found no connection: %w", connectFails, err))
		}
		wait := c.jitter(c.retry.backoff(attempt))
		if deadline, ok := callCtx.Deadline(); ok && !c.now().Add(wait).Before(deadline) {
			return timeUp(fmt.Errorf("giving up after %d attempts: retrying in %s would pass the call's deadline, %s from its start (%w): %w",
				attempt, wait.Round(time.Millisecond), budget.Round(time.Millisecond), context.DeadlineExceeded, err))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "cluster api retry",
			slog.String("cluster", c.name), slog.String("method", cl.method), slog.String("path", cl.path),
			slog.Int("attempt", attempt), slog.Duration("wait", wait))
		if serr := c.sleep(callCtx, wait); serr != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return fmt.Errorf("giving up after %d attempts: %w: %w", attempt, serr, err)
			}
			return timeUp(fmt.Errorf("giving up after %d attempts: %w: %w", attempt, serr, err))
		}
	}
}

// budget derives the context of one call and its retries: at most callShare of the time left on
// ctx, and at most maxCallTime.
func (c *Client) budget(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	now := c.now()
	limit := c.maxCallTime
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Duration(float64(deadline.Sub(now))*c.callShare))
	}
	callCtx, cancel := context.WithDeadline(ctx, now.Add(limit))
	return callCtx, cancel, limit
}

// result is the outcome of one attempt.
type result struct {
	err         error
	retry       bool // worth another attempt
	noConn      bool // no connection was made: the request never reached the server
	unreachable bool // with noConn: the failure says the API cannot be reached (a refused or dead peer, no such host)
}

// attempt makes one request.
func (c *Client) attempt(ctx context.Context, cl call, payload []byte, n int) (res result) {
	var connected atomic.Bool // set once a (TLS) connection to the server is ready
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	req, err := c.newRequest(ctx, cl.method, cl.path, cl.query, payload)
	if err != nil {
		return result{err: err}
	}
	start := time.Now()
	status := 0
	defer func() {
		attrs := []slog.Attr{
			slog.String("cluster", c.name), slog.String("method", cl.method), slog.String("path", cl.path),
			slog.Int("status", status), slog.Int("attempt", n), slog.Duration("duration", time.Since(start)),
		}
		var apiErr *reapi.Error
		switch {
		case errors.As(res.err, &apiErr):
			attrs = append(attrs, slog.String("error_code", apiErr.Code))
		case res.err != nil:
			attrs = append(attrs, slog.String("error", res.err.Error()))
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
		var dnsErr *net.DNSError
		retry := transient(err)
		return result{
			err: fmt.Errorf("%s %s: %w", cl.method, cl.path, err), retry: retry,
			noConn: !connected.Load(), unreachable: retry || errors.As(err, &dnsErr),
		}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
		_ = resp.Body.Close()
	}()
	status = resp.StatusCode
	if status < 200 || status > 299 {
		apiErr := c.apiError(cl.method, cl.path, resp)
		return result{err: apiErr, retry: apiErr.Retryable()}
	}
	if cl.decode == nil {
		return result{}
	}
	tooLarge := func() result {
		return result{err: &reapi.CallError{Code: reapi.CodeResponseTooLarge, Cluster: c.name, Method: cl.method, Path: cl.path,
			Limit: c.maxResponse, Err: fmt.Errorf("%s %s on %s: the response body exceeds the cap of %d bytes (MaxResponseBytes)",
				cl.method, cl.path, c.name, c.maxResponse)}}
	}
	if resp.ContentLength > c.maxResponse {
		return tooLarge()
	}
	body := &cappedReader{r: resp.Body, left: c.maxResponse}
	dec := json.NewDecoder(body)
	err = cl.decode(dec)
	if err == nil {
		// Nothing but white space may follow the value; reading on also enforces the cap on padding.
		if _, terr := dec.Token(); terr != io.EOF {
			err = cmp.Or(terr, errors.New("trailing data after the JSON value"))
		}
	} else if err == io.EOF && !body.exceeded && body.err == nil {
		return result{} // an empty body: the zero value the decoder left
	}
	switch {
	case err == nil:
		return result{}
	case body.exceeded:
		return tooLarge()
	case body.err != nil:
		return result{err: fmt.Errorf("%s %s: read response: %w", cl.method, cl.path, body.err), retry: transient(body.err)}
	default:
		return result{err: fmt.Errorf("%s %s: decode response: %w", cl.method, cl.path, err)}
	}
}

// cappedReader reads at most left bytes; a byte beyond them sets exceeded and fails the read. It
// remembers the first transport error, so a broken connection is told apart from bad JSON.
type cappedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	err      error
}

var errCapExceeded = errors.New("response body larger than the cap")

func (r *cappedReader) Read(p []byte) (int, error) {
	if r.exceeded {
		return 0, errCapExceeded
	}
	if r.left <= 0 {
		var one [1]byte
		n, err := r.r.Read(one[:])
		if n > 0 {
			r.exceeded = true
			return 0, errCapExceeded
		}
		r.note(err)
		return 0, err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	r.note(err)
	return n, err
}

func (r *cappedReader) note(err error) {
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
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
