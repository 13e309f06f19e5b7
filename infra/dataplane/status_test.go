package dataplane

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLogTail(t *testing.T) {
	const prefix = "5107:S 28 Nov 2026 04:29:02.520 "
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"the first warning of a failed attempt is the reason", []string{
			"* MASTER <-> REPLICA sync started",
			"# Failed to read response from the server: error:0A000418:SSL routines::tlsv1 alert unknown ca",
			"# Master did not respond to command during SYNC handshake",
		}, "Failed to read response from the server: error:0A000418:SSL routines::tlsv1 alert unknown ca"},
		{"a later failed attempt replaces it", []string{
			"* MASTER <-> REPLICA sync started",
			"# Failed to read response from the server: unknown ca",
			"* MASTER <-> REPLICA sync started",
			"# MASTER aborted replication with an error: NOAUTH Authentication required.",
		}, "MASTER aborted replication with an error: NOAUTH Authentication required."},
		{"success clears it", []string{
			"* MASTER <-> REPLICA sync started",
			"# Failed to read response from the server: unknown ca",
			"* MASTER <-> REPLICA sync started",
			"* MASTER <-> REPLICA sync: Finished with success",
		}, ""},
		{"a lost connection outside an attempt counts", []string{
			"* MASTER <-> REPLICA sync: Finished with success",
			"# Connection with master lost.",
		}, "Connection with master lost."},
		{"notices are not errors", []string{"* Connecting to MASTER 127.0.0.1:1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lt logTail
			for _, l := range tt.lines {
				lt.line(prefix + l)
			}
			if lt.lastErr != tt.want {
				t.Errorf("last error %q, want %q", lt.lastErr, tt.want)
			}
		})
	}
}

func TestOffsetHistoryLag(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	var h offsetHistory
	h.add(t0, 100)
	h.add(t0.Add(100*time.Millisecond), 100) // unchanged: not a new sample
	h.add(t0.Add(200*time.Millisecond), 150)
	h.add(t0.Add(300*time.Millisecond), 180)
	now := t0.Add(500 * time.Millisecond)
	tests := []struct {
		replica int64
		want    time.Duration
	}{
		{180, 0},                      // has everything the source had
		{200, 0},                      // ahead of the last sample
		{150, 200 * time.Millisecond}, // misses what the source had at +300ms
		{120, 300 * time.Millisecond}, // misses what the source had at +200ms
		{50, 500 * time.Millisecond},  // misses even the oldest sample
	}
	for _, tt := range tests {
		if got := h.lag(tt.replica, now); got != tt.want {
			t.Errorf("lag at offset %d = %v, want %v", tt.replica, got, tt.want)
		}
	}
}

func TestParseInfo(t *testing.T) {
	raw := "# Replication\r\nrole:slave\r\nmaster_port:6380\r\nmaster_link_status:up\r\nslave_repl_offset:42\r\n\r\n"
	want := info{"role": "slave", "master_port": "6380", "master_link_status": "up", "slave_repl_offset": "42"}
	got := parseInfo(raw)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("parseInfo (-want +got):\n%s", d)
	}
	if n, ok := got.int("slave_repl_offset"); !ok || n != 42 {
		t.Errorf("int(slave_repl_offset) = %d, %v", n, ok)
	}
}
