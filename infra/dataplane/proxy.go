package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Plain endpoint modes, by tls_mode.
type plainMode int

const (
	plainOpen     plainMode = iota // disabled: everything goes through
	plainFiltered                  // replica_ssl: ordinary clients only, SYNC and PSYNC refused
	plainClosed                    // enabled: not listening
)

func (m plainMode) String() string {
	return [...]string{"open", "filtered", "closed"}[m]
}

// refusal is what a replica gets on the plain endpoint of a replica_ssl database.
const refusal = "-ERR source requires TLS for replication: connect to its TLS endpoint\r\n"

// plainProxy is a database's plain endpoint: a loopback listener that forwards each connection to the
// server's unix socket. Its mode is taken when a connection is accepted, so a change applies to new
// connections only; connections already open keep going until Close.
type plainProxy struct {
	upstream string
	log      *slog.Logger
	port     int

	mu     sync.Mutex
	ln     net.Listener // nil while closed
	mode   plainMode
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newPlainProxy reserves a free loopback port and listens on it (mode open).
func newPlainProxy(upstream string, log *slog.Logger) (*plainProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("plain endpoint: listen: %w", err)
	}
	p := &plainProxy{upstream: upstream, log: log, port: ln.Addr().(*net.TCPAddr).Port, conns: map[net.Conn]struct{}{}}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go p.serve(ln)
	return p, nil
}

// setMode changes the mode for new connections: closed stops listening, open or filtered listens
// again on the same port.
func (p *plainProxy) setMode(m plainMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("plain endpoint is closed")
	}
	p.mode = m
	switch {
	case m == plainClosed && p.ln != nil:
		err := p.ln.Close()
		p.ln = nil
		if err != nil {
			return fmt.Errorf("plain endpoint: stop listening: %w", err)
		}
	case m != plainClosed && p.ln == nil:
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.port))
		if err != nil {
			return fmt.Errorf("plain endpoint: listen again on port %d: %w", p.port, err)
		}
		p.ln = ln
		p.wg.Add(1)
		go p.serve(ln)
	}
	return nil
}

func (p *plainProxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by setMode or close
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		mode := p.mode
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.handle(c, mode == plainFiltered)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// handle forwards one connection. Replies flow back untouched; requests are parsed only when
// filtering, to find SYNC and PSYNC.
func (p *plainProxy) handle(c net.Conn, filter bool) {
	defer c.Close()
	up, err := net.Dial("unix", p.upstream)
	if err != nil {
		p.log.Warn("plain endpoint: connect to redis-server", "err", err)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		up.Close()
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
	}()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up)
		c.Close() // the server hung up: so does the client
	}()
	if filter {
		if cmd, err := forwardCommands(up, bufio.NewReader(c), isReplicationCommand); err == nil && cmd != "" {
			p.log.Info("plain endpoint refused replication", "command", cmd)
			_, _ = io.WriteString(c, refusal)
		}
	} else {
		_, _ = io.Copy(up, c)
	}
	up.Close()
	c.Close()
	<-done
}

// close stops listening, cuts every connection and waits for the goroutines.
func (p *plainProxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func isReplicationCommand(name string) bool {
	return strings.EqualFold(name, "SYNC") || strings.EqualFold(name, "PSYNC")
}

// maxInline bounds an inline command line, as redis does (64 KiB).
const maxInline = 64 << 10

// forwardCommands copies RESP requests from r to w, one command at a time, until refuse accepts a
// command's name: that command is not forwarded and its name is returned. Values are streamed, not
// held in memory. It returns at the first read or write error; a request it cannot parse is forwarded
// as is for redis to reject.
func forwardCommands(w io.Writer, r *bufio.Reader, refuse func(string) bool) (string, error) {
	bw := bufio.NewWriter(w)
	flushIfIdle := func() error {
		if r.Buffered() == 0 {
			return bw.Flush()
		}
		return nil
	}
	for {
		if err := flushIfIdle(); err != nil {
			return "", err
		}
		first, err := r.Peek(1)
		if err != nil {
			return "", err
		}
		if first[0] != '*' {
			line, err := readLine(r, maxInline)
			if err != nil {
				return "", err
			}
			if f := strings.Fields(string(line)); len(f) > 0 && refuse(f[0]) {
				return f[0], bw.Flush()
			}
			if _, err := bw.Write(line); err != nil {
				return "", err
			}
			continue
		}
		header, err := readLine(r, 32)
		if err != nil {
			return "", err
		}
		n, ok := lengthOf(header, '*')
		if !ok || n < 1 {
			if _, err := bw.Write(header); err != nil {
				return "", err
			}
			continue
		}
		// The command name: hold it back until it is known to be allowed.
		held := bytes.NewBuffer(header)
		argHeader, err := readLine(r, 32)
		if err != nil {
			return "", err
		}
		held.Write(argHeader)
		size, ok := lengthOf(argHeader, '$')
		if !ok {
			if _, err := bw.Write(held.Bytes()); err != nil {
				return "", err
			}
			continue
		}
		if size <= 16 { // longer than any command name: cannot be refused
			name := make([]byte, size+2)
			if _, err := io.ReadFull(r, name); err != nil {
				return "", err
			}
			if refuse(string(name[:size])) {
				return string(name[:size]), bw.Flush()
			}
			held.Write(name)
		}
		if _, err := bw.Write(held.Bytes()); err != nil {
			return "", err
		}
		if size > 16 {
			if _, err := io.CopyN(bw, r, int64(size)+2); err != nil {
				return "", err
			}
		}
		for i := 1; i < n; i++ {
			argHeader, err := readLine(r, 32)
			if err != nil {
				return "", err
			}
			if _, err := bw.Write(argHeader); err != nil {
				return "", err
			}
			size, ok := lengthOf(argHeader, '$')
			if !ok {
				break // not RESP: redis will say so
			}
			if _, err := io.CopyN(bw, r, int64(size)+2); err != nil {
				return "", err
			}
		}
	}
}

// readLine reads up to and including '\n', failing past max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("request line longer than %d bytes", max)
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// lengthOf parses "<prefix><n>\r\n".
func lengthOf(line []byte, prefix byte) (int, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if len(s) < 2 || s[0] != prefix {
		return 0, false
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 0 || n > 512<<20 {
		return 0, false
	}
	return n, true
}
