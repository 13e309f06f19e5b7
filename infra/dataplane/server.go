package dataplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/replica-tls/replica-tls/infra/simulator"
)

// controlUser is the data plane's own ACL user on every server, reached over the unix socket only.
const controlUser = "replica-tls-dataplane"

const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
)

// server is one database's redis-server with its endpoints.
type server struct {
	key     dbKey
	dir     string
	sock    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	stderr  *bytes.Buffer // redis-server's own output before its log file opens
	ctl     *redis.Client // the control connection (unix socket, controlUser)
	proxy   *plainProxy
	tlsPort int // chosen at start; redis listens on it while TLS is on

	known bool               // cfg came from the simulator
	cfg   simulator.DBConfig // the latest configuration; holds secrets

	applied   applied  // what the server runs now
	gen       int      // file generation counter
	files     []string // the certificate, key and bundle files in use
	links     []*linkState
	logTail   logTail
	offsets   offsetHistory // the server's master_repl_offset over time, for its replicas' lag
	downSince time.Time     // when its link was first seen down; zero while up

	stopOnce sync.Once
	stopErr  error
}

// startServer starts a redis-server for k with nothing open but its unix socket; apply opens the
// endpoints once the configuration is known. Caller holds p.mu.
func (p *Plane) startServer(ctx context.Context, k dbKey) (*server, error) {
	dir := filepath.Join(p.root, fmt.Sprintf("%s-%d", k.cluster, k.uid))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create folder: %w", err)
	}
	pw, err := randomHex(16)
	if err != nil {
		return nil, fmt.Errorf("control password: %w", err)
	}
	s := &server{
		key:     k,
		dir:     dir,
		sock:    filepath.Join(dir, "redis.sock"),
		logPath: filepath.Join(dir, "redis.log"),
		exited:  make(chan struct{}),
		stderr:  &bytes.Buffer{},
		applied: applied{authClients: true}, // redis's default
	}
	// Only the unix socket at first: no TCP listener until apply sets the admin password and TLS.
	conf := strings.Join([]string{
		"port 0",
		"bind 127.0.0.1",
		"protected-mode no",
		"unixsocket " + s.sock,
		"unixsocketperm 700",
		"dir " + dir,
		"logfile " + s.logPath,
		"loglevel notice",
		`save ""`,
		"appendonly no",
		"repl-diskless-sync-delay 0",
		"daemonize no",
		"user " + controlUser + " on >" + pw + " ~* &* +@all",
	}, "\n") + "\n"
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write redis.conf: %w", err)
	}
	if s.tlsPort, err = freePort(); err != nil {
		return nil, err
	}
	if s.proxy, err = newPlainProxy(s.sock, p.log.With("db", k.String())); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(p.redis, confPath)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	s.cmd.SysProcAttr = sysProcAttr()
	s.cmd.WaitDelay = time.Second
	if err := s.cmd.Start(); err != nil {
		s.proxy.close()
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	s.ctl = redis.NewClient(&redis.Options{
		Network:         "unix",
		Addr:            s.sock,
		Username:        controlUser,
		Password:        pw,
		Protocol:        2,
		DisableIdentity: true, // CLIENT SETINFO is newer than redis 7.0
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        2,
		DialTimeout:     time.Second,
		ReadTimeout:     5 * time.Second,
		WriteTimeout:    5 * time.Second,
	})
	if err := s.waitReady(ctx); err != nil {
		_ = s.stop()
		return nil, err
	}
	p.log.Info("redis-server started", "db", k.String(), "pid", s.cmd.Process.Pid, "plain_port", s.proxy.port, "tls_port", s.tlsPort)
	return s, nil
}

// waitReady waits until the server answers on its socket. It dials the socket itself until it exists:
// go-redis backs off for a second after failed dials.
func (s *server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var d net.Dialer
	for {
		var err error
		var c net.Conn
		if c, err = d.DialContext(ctx, "unix", s.sock); err == nil {
			c.Close()
			if err = s.ctl.Ping(ctx).Err(); err == nil {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server exited during start-up: %s%s", strings.TrimSpace(s.stderr.String()), s.logExcerpt())
		case <-ctx.Done():
			return fmt.Errorf("redis-server did not answer within %v: %w", startTimeout, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// logExcerpt is the end of the server's log, for start-up errors (redis logs no secrets).
func (s *server) logExcerpt() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return "; log: " + strings.TrimSpace(string(b))
}

// stop ends the server's process group (SIGTERM, then SIGKILL) and its proxy.
func (s *server) stop() error {
	s.stopOnce.Do(func() {
		s.proxy.close()
		if s.ctl != nil {
			_ = s.ctl.Close()
		}
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		signalGroup(s.cmd.Process, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			signalGroup(s.cmd.Process, syscall.SIGKILL)
			select {
			case <-s.exited:
			case <-time.After(stopTimeout):
				s.stopErr = fmt.Errorf("redis-server of db %s (pid %d) did not exit", s.key, s.cmd.Process.Pid)
			}
		}
	})
	return s.stopErr
}

// freePort picks a free loopback port for redis to listen on. Another process could take it before
// redis binds it; applyTLSPort then picks another.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// errRefused wraps a redis error on a call that carried a secret: redis's text is left out in case it
// quotes the value.
var errRefused = errors.New("redis-server refused the value")
