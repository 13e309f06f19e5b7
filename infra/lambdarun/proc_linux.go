//go:build linux

package lambdarun

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

func platformSupported() error { return nil }

// sysProcAttr puts the emulator in its own process group and has the kernel kill it if this process
// dies without calling Stop (e.g. a test binary killed on timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// readStat parses /proc/<pid>/stat; ok is false when the process does not exist.
func readStat(pid int) (procStat, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	return parseStat(data)
}

// descendants lists every process below pid, children first.
func descendants(pid int) []procStat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procStat{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(n); ok {
			children[st.ppid] = append(children[st.ppid], st)
		}
	}
	var out []procStat
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// running reports whether p still exists and has not exited (a zombie has exited: it only waits to
// be reaped by its parent).
func running(p proc) bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start && st.state != 'Z'
}

// exists reports whether p is still in the process table, zombie or not.
func exists(p proc) bool {
	st, ok := readStat(p.pid)
	return ok && st.start == p.start
}

// killGroupAndProcess sends SIGKILL to p's own process group (the emulator starts the function with
// Setpgid, so the function and anything it spawned share one) and to p itself.
func killGroupAndProcess(p proc) {
	st, ok := readStat(p.pid)
	if !ok || st.start != p.start {
		return
	}
	if st.pgid == p.pid && st.pgid != syscall.Getpgrp() {
		_ = syscall.Kill(-st.pgid, syscall.SIGKILL)
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
