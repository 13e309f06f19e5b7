package lambdarun

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Variables the runner sets unless the caller's env map already does.
const (
	envTimeout    = "AWS_LAMBDA_FUNCTION_TIMEOUT"
	envName       = "AWS_LAMBDA_FUNCTION_NAME"
	envMemory     = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
	envRegion     = "AWS_REGION"
	envDefRegion  = "AWS_DEFAULT_REGION"
	defaultRegion = "us-east-1"
	defaultName   = "function"
)

// runtimeEnv is the complete environment of the emulator, which hands all of it to the function:
// env, plus PATH and HOME from the caller (getenv), plus the Lambda variables the emulator needs.
// Values set in env win over those derived from opts.
func runtimeEnv(env map[string]string, opts Options, getenv func(string) (string, bool)) ([]string, error) {
	out := make(map[string]string, len(env)+8)
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("environment variable name %q is not valid", k)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("environment variable %s: value contains a NUL byte", k)
		}
		out[k] = v
	}
	if _, ok := out["AWS_LAMBDA_MAX_CONCURRENCY"]; ok {
		// It switches aws-lambda-rie into its Lambda Managed Instances mode, a different emulator.
		return nil, errors.New("environment variable AWS_LAMBDA_MAX_CONCURRENCY is not supported by this runner")
	}
	for _, k := range []string{"PATH", "HOME"} {
		if _, ok := out[k]; !ok {
			if v, ok := getenv(k); ok {
				out[k] = v
			}
		}
	}

	if v, ok := out[envTimeout]; ok {
		// The emulator panics on anything but a whole number of seconds.
		if n, err := strconv.Atoi(v); err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive whole number of seconds", envTimeout, v)
		}
	} else {
		t := opts.Timeout
		if t < 0 {
			return nil, fmt.Errorf("timeout %v is negative", t)
		}
		if t == 0 {
			t = DefaultTimeout
		}
		out[envTimeout] = strconv.Itoa(int((t + time.Second - 1) / time.Second)) // round up
	}
	if _, ok := out[envMemory]; !ok {
		mb := opts.MemoryMB
		if mb < 0 {
			return nil, fmt.Errorf("memory size %d MB is negative", mb)
		}
		if mb == 0 {
			mb = DefaultMemoryMB
		}
		out[envMemory] = strconv.Itoa(mb)
	}
	if _, ok := out[envName]; !ok {
		out[envName] = defaultName
		if opts.FunctionName != "" {
			out[envName] = opts.FunctionName
		}
	}
	// The emulator sets neither region variable; SDKs read one or the other.
	region, ok := out[envRegion]
	if !ok {
		region, ok = out[envDefRegion]
	}
	if !ok || region == "" {
		region = defaultRegion
	}
	if _, ok := out[envRegion]; !ok {
		out[envRegion] = region
	}
	if _, ok := out[envDefRegion]; !ok {
		out[envDefRegion] = region
	}

	list := make([]string, 0, len(out))
	for k, v := range out {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list, nil
}
