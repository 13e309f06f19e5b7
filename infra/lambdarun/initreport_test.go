package lambdarun

import (
	"errors"
	"testing"
	"time"
)

func TestInitDuration(t *testing.T) {
	tests := []struct {
		name    string
		log     string
		want    time.Duration
		wantErr error
	}{
		{"one report", "x [INFO] (rapid) INIT START(type: on-demand, phase: init)\nx [INFO] (rapid) INIT REPORT(durationMs: 27.597000)\n", 27597 * time.Microsecond, nil},
		{"the last of several", "INIT REPORT(durationMs: 12)\nINIT REPORT(durationMs: 3.5)\n", 3500 * time.Microsecond, nil},
		{"REPORT's Init Duration is not it", "REPORT RequestId: r\tInit Duration: 0.05 ms\tDuration: 31.05 ms\n", 0, errNoInitReport},
		{"empty", "", 0, errNoInitReport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InitDuration(tt.log)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("InitDuration = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
