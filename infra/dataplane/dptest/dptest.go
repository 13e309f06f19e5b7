// Package dptest holds what the data plane's tests share: a plane per test that fails loudly without
// redis-server, clients on a database's plain and TLS endpoints, and waiting for a condition.
package dptest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replica-tls/replica-tls/infra/dataplane"
	"github.com/replica-tls/replica-tls/infra/simulator"
)

// AllowSkipEnv lets a developer without redis-server skip (loudly) instead of failing.
const AllowSkipEnv = "REPLICA_TLS_ALLOW_SKIP"

// NewPlane starts a data plane that is closed when the test ends. Without redis-server the test fails
// with the install command, or is skipped loudly when REPLICA_TLS_ALLOW_SKIP=1.
func NewPlane(t testing.TB) *dataplane.Plane {
	t.Helper()
	p, err := dataplane.New(context.WithoutCancel(t.Context()), dataplane.Options{})
	if errors.Is(err, dataplane.ErrNoRedisServer) && os.Getenv(AllowSkipEnv) == "1" {
		t.Skipf("*** SKIPPED: %v ***", err)
	}
	if err != nil {
		t.Fatalf("start data plane: %v (or set %s=1 to skip loudly)", err, AllowSkipEnv)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, p.Dir())
		}
		if err := p.Close(); err != nil {
			t.Errorf("close data plane: %v", err)
		}
	})
	return p
}

// Endpoint returns a database's endpoint or fails the test.
func Endpoint(t testing.TB, p *dataplane.Plane, cluster string, uid int) dataplane.Endpoint {
	t.Helper()
	ep, err := p.Endpoint(cluster, uid)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// options are the client settings every test client shares: no retries, so a refusal shows at once.
func options(addr, password string) *redis.Options {
	return &redis.Options{
		Addr:            addr,
		Password:        password,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        2,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
	}
}

// Plain is an ordinary client on the database's plain endpoint, closed when the test ends.
func Plain(t testing.TB, p *dataplane.Plane, cluster string, uid int) *redis.Client {
	t.Helper()
	ep := Endpoint(t, p, cluster, uid)
	c := redis.NewClient(options(ep.PlainAddr, ep.Password))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TLSClient is a client on the database's TLS endpoint that trusts serverCertPEM for the name
// serverName and presents certPEM/keyPEM (nothing when empty). Closed when the test ends.
func TLSClient(t testing.TB, p *dataplane.Plane, cluster string, uid int, serverCertPEM, serverName, certPEM, keyPEM string) *redis.Client {
	t.Helper()
	ep := Endpoint(t, p, cluster, uid)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(serverCertPEM)) {
		t.Fatal("TLS client: the server certificate does not parse")
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if certPEM != "" {
		pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
		if err != nil {
			t.Fatalf("TLS client: client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	o := options(ep.TLSAddr, ep.Password)
	o.TLSConfig = cfg
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Eventually polls cond every 20ms until it holds, failing the test after timeout with the last
// explanation cond gave. Timeouts are generous: they bound a hang, they measure nothing.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Link is a replica_sources entry's state as the simulator's API shows it.
type Link struct {
	UID        int    `json:"uid"`
	Encryption bool   `json:"encryption"`
	Status     string `json:"status"`
	LastError  string `json:"last_error"`
	Lag        int64  `json:"lag"`
}

// LinkOf reads the first replica_sources entry of a database through the simulator.
func LinkOf(t testing.TB, sim *simulator.Sim, cluster string, uid int) Link {
	t.Helper()
	raw, err := sim.Cluster(cluster).DB(uid)
	if err != nil {
		t.Fatal(err)
	}
	var db struct {
		Sources []Link `json:"replica_sources"`
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatal(err)
	}
	if len(db.Sources) == 0 {
		t.Fatalf("db %s/%d has no replica source", cluster, uid)
	}
	return db.Sources[0]
}

// WaitLink waits until the link's status is want and, for out-of-sync, its last_error contains
// errPart; it returns the link as last read.
func WaitLink(t testing.TB, sim *simulator.Sim, cluster string, uid int, want, errPart string) Link {
	t.Helper()
	var l Link
	Eventually(t, 20*time.Second, "link of "+cluster+" becomes "+want, func() (bool, string) {
		l = LinkOf(t, sim, cluster, uid)
		return l.Status == want && strings.Contains(l.LastError, errPart), l.Status + " / " + l.LastError
	})
	return l
}

// Arrives writes key=value with from and waits until to reads it back.
func Arrives(t testing.TB, from, to *redis.Client, key, value string) {
	t.Helper()
	ctx := t.Context()
	if err := from.Set(ctx, key, value, 0).Err(); err != nil {
		t.Fatalf("write %s on the source: %v", key, err)
	}
	Eventually(t, 20*time.Second, key+" arrives on the replica", func() (bool, string) {
		got, err := to.Get(ctx, key).Result()
		if err != nil {
			return false, err.Error()
		}
		return got == value, "value " + got
	})
}

// Info reads one INFO section of a server as key/value pairs.
func Info(t testing.TB, c *redis.Client, section string) map[string]string {
	t.Helper()
	raw, err := c.Info(t.Context(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// TryReplication attempts what a replica does first on addr (AUTH, then PSYNC ? -1) and returns the
// server's first answer to PSYNC: "+FULLRESYNC ..." when replication is allowed.
func TryReplication(ctx context.Context, addr, password string) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	send := func(args ...string) (string, error) {
		msg := fmt.Sprintf("*%d\r\n", len(args))
		for _, a := range args {
			msg += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		return strings.TrimSpace(line), err
	}
	if password != "" {
		if reply, err := send("AUTH", password); err != nil || reply != "+OK" {
			return reply, fmt.Errorf("AUTH refused: %q, %v", reply, err)
		}
	}
	return send("PSYNC", "?", "-1")
}

// ReplicationAllowed reports whether a replica could start replicating from addr.
func ReplicationAllowed(t testing.TB, addr, password string) bool {
	t.Helper()
	reply, err := TryReplication(t.Context(), addr, password)
	t.Logf("replication attempt on %s: %q (%v)", addr, reply, err)
	return err == nil && strings.HasPrefix(reply, "+FULLRESYNC")
}

// logTails shows the end of every server's log (redis logs no secrets): what a failed test needs.
func logTails(t testing.TB, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "redis.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		lines = lines[max(0, len(lines)-30):]
		t.Logf("%s (last %d lines):\n%s", filepath.Base(filepath.Dir(l)), len(lines), strings.Join(lines, "\n"))
	}
}
