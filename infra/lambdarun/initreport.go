package lambdarun

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// initReport matches the emulator's line for the end of a function's INIT phase. The REPORT line's
// "Init Duration" is no use locally: the emulator runs INIT inside the first invoke.
var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9]+(?:\.[0-9]+)?)\)`)

// errNoInitReport means the emulator's log holds no INIT REPORT line.
var errNoInitReport = errors.New("no INIT REPORT line in the emulator's log")

// InitDuration returns the duration of the last INIT phase the emulator's log (Options.Stderr)
// reports, from the emulator starting the bootstrap to the bootstrap asking for its first event.
func InitDuration(log string) (time.Duration, error) {
	all := initReport.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return 0, errNoInitReport
	}
	ms, err := strconv.ParseFloat(all[len(all)-1][1], 64)
	if err != nil {
		return 0, fmt.Errorf("read INIT REPORT duration: %w", err)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}
