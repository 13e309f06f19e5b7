package lambdarun

import (
	"bytes"
	"strconv"
)

// proc identifies a process across pid reuse by its start time (in clock ticks since boot).
type proc struct {
	pid   int
	start uint64
}

type procStat struct {
	proc
	ppid, pgid int
	state      byte
}

// parseStat reads fields 3 (state), 4 (ppid), 5 (pgrp) and 22 (starttime) of a /proc/<pid>/stat line;
// field 2, the command name in parentheses, may itself contain spaces and parentheses.
func parseStat(data []byte) (procStat, bool) {
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data[:open])))
	if err != nil {
		return procStat{}, false
	}
	f := bytes.Fields(data[end+1:]) // f[0] is field 3
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	start, err3 := strconv.ParseUint(string(f[19]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, false
	}
	return procStat{proc: proc{pid: pid, start: start}, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}
