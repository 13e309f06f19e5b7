//go:build !linux

package lambdarun

import (
	"errors"
	"syscall"
)

// The emulator runs only on Linux; elsewhere Start fails early and these are never reached.

func platformSupported() error {
	return errors.New("aws-lambda-rie runs only on Linux: use sam local invoke with Docker")
}

func sysProcAttr() *syscall.SysProcAttr { return nil }
func readStat(int) (procStat, bool)     { return procStat{}, false }
func descendants(int) []procStat        { return nil }
func running(proc) bool                 { return false }
func exists(proc) bool                  { return false }
func killGroupAndProcess(proc)          {}
func killGroup(int)                     {}
