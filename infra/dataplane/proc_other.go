//go:build !linux

package dataplane

import (
	"os"
	"syscall"
)

// sysProcAttr: no process groups here; stop signals the process itself.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		_ = p.Kill()
		return
	}
	_ = p.Signal(sig)
}
