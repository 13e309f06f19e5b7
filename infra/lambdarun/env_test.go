package lambdarun

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRuntimeEnv(t *testing.T) {
	parent := map[string]string{
		"PATH":                  "/usr/bin",
		"HOME":                  "/home/dev",
		"AWS_SECRET_ACCESS_KEY": "caller-secret", // must not leak in
		"GOFLAGS":               "-mod=mod",
	}
	getenv := func(k string) (string, bool) { v, ok := parent[k]; return v, ok }
	tests := []struct {
		name string
		env  map[string]string
		opts Options
		want []string
	}{
		{
			name: "defaults",
			want: []string{
				"AWS_DEFAULT_REGION=us-east-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_NAME=function",
				"AWS_LAMBDA_FUNCTION_TIMEOUT=3", "AWS_REGION=us-east-1", "HOME=/home/dev", "PATH=/usr/bin",
			},
		},
		{
			name: "options, timeout rounded up",
			env:  map[string]string{"ECHO": "x"},
			opts: Options{FunctionName: "ReplicaCreatedFunction", Timeout: 1500 * time.Millisecond, MemoryMB: 512},
			want: []string{
				"AWS_DEFAULT_REGION=us-east-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "AWS_LAMBDA_FUNCTION_NAME=ReplicaCreatedFunction",
				"AWS_LAMBDA_FUNCTION_TIMEOUT=2", "AWS_REGION=us-east-1", "ECHO=x", "HOME=/home/dev", "PATH=/usr/bin",
			},
		},
		{
			name: "explicit variables win over options and the caller's PATH",
			env: map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "1", "AWS_LAMBDA_FUNCTION_NAME": "n",
				"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "64", "PATH": "/bin", "AWS_REGION": "eu-west-1"},
			opts: Options{FunctionName: "ignored", Timeout: time.Minute, MemoryMB: 1024},
			want: []string{
				"AWS_DEFAULT_REGION=eu-west-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=64", "AWS_LAMBDA_FUNCTION_NAME=n",
				"AWS_LAMBDA_FUNCTION_TIMEOUT=1", "AWS_REGION=eu-west-1", "HOME=/home/dev", "PATH=/bin",
			},
		},
		{
			name: "AWS_DEFAULT_REGION alone sets AWS_REGION too",
			env:  map[string]string{"AWS_DEFAULT_REGION": "eu-central-1"},
			want: []string{
				"AWS_DEFAULT_REGION=eu-central-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_NAME=function",
				"AWS_LAMBDA_FUNCTION_TIMEOUT=3", "AWS_REGION=eu-central-1", "HOME=/home/dev", "PATH=/usr/bin",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runtimeEnv(tt.env, tt.opts, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRuntimeEnvRejectsBadInput(t *testing.T) {
	noParent := func(string) (string, bool) { return "", false }
	tests := []struct {
		name    string
		env     map[string]string
		opts    Options
		wantErr string
	}{
		{"timeout not a number", map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "1.5"}, Options{}, "positive whole number"},
		{"timeout zero", map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "0"}, Options{}, "positive whole number"},
		{"negative option timeout", nil, Options{Timeout: -time.Second}, "negative"},
		{"negative memory", nil, Options{MemoryMB: -1}, "negative"},
		{"name with =", map[string]string{"A=B": "c"}, Options{}, "not valid"},
		{"empty name", map[string]string{"": "c"}, Options{}, "not valid"},
		{"NUL in a value", map[string]string{"PASSWORD": "se\x00cret"}, Options{}, "PASSWORD: value contains a NUL"},
		{"managed instances mode", map[string]string{"AWS_LAMBDA_MAX_CONCURRENCY": "4"}, Options{}, "AWS_LAMBDA_MAX_CONCURRENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runtimeEnv(tt.env, tt.opts, noParent)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "cret") {
				t.Errorf("error %q repeats a variable's value", err)
			}
		})
	}
}
