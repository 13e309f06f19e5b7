package dataplane

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestForwardCommands(t *testing.T) {
	big := strings.Repeat("v", 70_000) // longer than a bufio buffer: streamed, not held
	tests := []struct {
		name        string
		in          string
		wantFwd     string
		wantRefused string
	}{
		{"ordinary commands pass untouched", "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
			"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", ""},
		{"PSYNC is refused and nothing after it is forwarded", "*1\r\n$4\r\nPING\r\n*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n*1\r\n$4\r\nPING\r\n",
			"*1\r\n$4\r\nPING\r\n", "PSYNC"},
		{"sync in lower case", "*1\r\n$4\r\nsync\r\n", "", "sync"},
		{"inline SYNC", "PING\r\nSYNC\r\n", "PING\r\n", "SYNC"},
		{"REPLCONF passes (harmless without PSYNC)", "*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n",
			"*3\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n", ""},
		{"a value named PSYNC is not a command", "*3\r\n$3\r\nSET\r\n$5\r\nPSYNC\r\n$5\r\nPSYNC\r\n",
			"*3\r\n$3\r\nSET\r\n$5\r\nPSYNC\r\n$5\r\nPSYNC\r\n", ""},
		{"a large value is streamed", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$70000\r\n" + big + "\r\n",
			"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$70000\r\n" + big + "\r\n", ""},
		{"a long first argument cannot be a refused command", "*1\r\n$20\r\nAAAAAAAAAAAAAAAAAAAA\r\n",
			"*1\r\n$20\r\nAAAAAAAAAAAAAAAAAAAA\r\n", ""},
		{"garbage is forwarded for redis to reject", "*x\r\n", "*x\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			refused, _ := forwardCommands(&out, bufio.NewReader(strings.NewReader(tt.in)), isReplicationCommand)
			if refused != tt.wantRefused {
				t.Errorf("refused %q, want %q", refused, tt.wantRefused)
			}
			if out.String() != tt.wantFwd {
				t.Errorf("forwarded %.80q, want %.80q", out.String(), tt.wantFwd)
			}
		})
	}
}
