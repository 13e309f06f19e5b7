package dataplane

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
)

// poll reports every link's state every PollInterval until ctx ends.
func (p *Plane) poll(ctx context.Context) {
	t := time.NewTicker(p.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.report(ctx)
	}
}

// report reads every server's replication state and reports each link to the simulator. It holds
// p.mu throughout, so a report never straddles a change: the simulator drops reports made before the
// data plane call that carries a change has returned, and those made after it see the change.
func (p *Plane) report(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.sim == nil {
		return
	}
	now := time.Now()
	servers := p.sortedServers()
	infos := map[*server]info{}
	for _, s := range servers {
		if !s.known {
			continue
		}
		raw, err := s.ctl.Info(ctx, "replication").Result()
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("read replication state", "db", s.key.String(), "err", err)
			}
			continue
		}
		in := parseInfo(raw)
		infos[s] = in
		if off, ok := in.int("master_repl_offset"); ok {
			s.offsets.add(now, off)
		}
	}
	for _, s := range servers {
		if len(s.links) == 0 {
			continue
		}
		s.logTail.scan(s.logPath)
		for _, l := range s.links {
			r := p.linkReport(s, l, infos, now)
			if err := p.sim.ReportLink(s.key.cluster, s.key.uid, l.entry.UID, r); err != nil {
				p.log.Debug("report link", "db", s.key.String(), "source", l.entry.UID, "err", err)
			}
		}
	}
}

// linkReport turns what redis says about a link into the API's status, lag and last_error.
func (p *Plane) linkReport(s *server, l *linkState, infos map[*server]info, now time.Time) simulator.LinkReport {
	if l.static != "" {
		return simulator.LinkReport{Status: "out-of-sync", LastError: l.static}
	}
	in, ok := infos[s]
	if !ok {
		return simulator.LinkReport{Status: "out-of-sync", LastError: "data plane: cannot read the replica's state"}
	}
	if in["master_link_status"] == "up" {
		s.downSince = time.Time{}
		var lag int64
		if src, _ := p.sourceOf(l.entry.URI); src != nil {
			if off, ok := in.int("slave_repl_offset"); ok {
				lag = src.offsets.lag(off, now).Milliseconds()
			}
		}
		return simulator.LinkReport{Status: "in-sync", Lag: lag}
	}
	if s.downSince.IsZero() {
		s.downSince = now
	}
	lag := now.Sub(s.downSince).Milliseconds()
	switch {
	case in["master_sync_in_progress"] == "1":
		return simulator.LinkReport{Status: "syncing", Lag: lag}
	case s.logTail.lastErr != "":
		return simulator.LinkReport{Status: "out-of-sync", LastError: s.logTail.lastErr, Lag: lag}
	default: // the first attempt since the link was (re)configured has not failed yet
		return simulator.LinkReport{Status: "syncing", Lag: lag}
	}
}

// info is one INFO section as key/value pairs.
type info map[string]string

func parseInfo(raw string) info {
	out := info{}
	for _, line := range strings.Split(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

func (in info) int(key string) (int64, bool) {
	n, err := strconv.ParseInt(in[key], 10, 64)
	return n, err == nil
}

// offsetHistory remembers when a source's replication offset was first seen at each value, so that a
// replica's offset can be turned into milliseconds behind.
type offsetHistory struct {
	samples []offsetSample
}

type offsetSample struct {
	at     time.Time
	offset int64
}

const maxOffsetSamples = 1000

func (h *offsetHistory) add(at time.Time, offset int64) {
	if n := len(h.samples); n > 0 && h.samples[n-1].offset == offset {
		return
	}
	if len(h.samples) == maxOffsetSamples {
		h.samples = append(h.samples[:0], h.samples[1:]...)
	}
	h.samples = append(h.samples, offsetSample{at, offset})
}

// lag is how long ago the source first went past offset: 0 when the replica has everything seen.
func (h *offsetHistory) lag(offset int64, now time.Time) time.Duration {
	for _, s := range h.samples {
		if s.offset > offset {
			return now.Sub(s.at)
		}
	}
	return 0
}

// logTail follows a replica's log for the reason its last connection attempt failed: redis keeps it
// out of INFO. The first warning of an attempt is the specific one ("tlsv1 alert unknown ca"); those
// after it are generic ("Master did not respond to command during SYNC handshake").
type logTail struct {
	offset     int64
	partial    []byte
	inAttempt  bool
	attemptErr string
	lastErr    string // of the latest failed attempt; "" after a success
}

// reset forgets errors, those already written but not yet read included: the link was reconfigured.
func (t *logTail) reset(path string) {
	t.attemptErr, t.lastErr, t.inAttempt = "", "", false
	if info, err := os.Stat(path); err == nil {
		t.offset, t.partial = info.Size(), nil
	}
}

// scan reads the lines written since the last scan.
func (t *logTail) scan(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return
	}
	t.offset += int64(len(b))
	b = append(t.partial, b...)
	last := bytes.LastIndexByte(b, '\n')
	if last < 0 {
		t.partial = b
		return
	}
	t.partial = append([]byte(nil), b[last+1:]...)
	for _, line := range strings.Split(string(b[:last]), "\n") {
		t.line(line)
	}
}

// line handles one log line: "<pid>:<role> <dd> <Mon> <yyyy> <hh:mm:ss.mmm> <level> <message>".
func (t *logTail) line(line string) {
	f := strings.SplitN(line, " ", 7)
	if len(f) < 7 {
		return
	}
	level, msg := f[5], f[6]
	switch {
	case strings.HasPrefix(msg, "MASTER <-> REPLICA sync started"):
		t.inAttempt, t.attemptErr = true, ""
	case strings.Contains(msg, "Finished with success"),
		strings.HasPrefix(msg, "Successful partial resynchronization"),
		strings.Contains(msg, "Master accepted a Partial Resynchronization"):
		t.inAttempt, t.attemptErr, t.lastErr = false, "", ""
	case level == "#" && (!t.inAttempt || t.attemptErr == ""):
		t.attemptErr, t.lastErr = msg, msg
	}
}
