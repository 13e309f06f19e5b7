package moto

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// AtomicProxy fronts a moto_server and passes DynamoDB requests one at a time; every other request
// goes through at once.
//
// Why: moto checks a condition and writes the item in two steps without a lock, so two concurrent
// conditional puts on one key can both succeed (measured: 1 key in 300 with 16 concurrent puts).
// DynamoDB makes each request atomic, and replica-tls's leases rely on that. Running the local stack
// through this proxy tests replica-tls, not moto's threading.
type AtomicProxy struct {
	URL string
	srv *http.Server
	ln  net.Listener
	rot rotations // RotateSecret's empty AWSPENDING version (rotation.go)
}

// StartAtomicProxy listens on a free 127.0.0.1 port and forwards to motoURL.
func StartAtomicProxy(motoURL string) (*AtomicProxy, error) {
	target, err := url.Parse(motoURL)
	if err != nil {
		return nil, fmt.Errorf("moto URL %q: %w", motoURL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the DynamoDB-atomic proxy: %w", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var one sync.Mutex
	p := &AtomicProxy{URL: "http://" + ln.Addr().String(), ln: ln}
	proxy.ModifyResponse = func(resp *http.Response) error {
		if isDescribe(resp.Request.Header) && p.rot.any() {
			return p.rot.rewriteDescribe(resp)
		}
		return nil
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
			one.Lock()
			defer one.Unlock()
		}
		if isDescribe(r.Header) {
			r.Header.Del("Accept-Encoding") // the answer may be rewritten: plain text
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy.
func (p *AtomicProxy) Close() error { return p.srv.Close() }
