// Command echofn is a tiny Lambda function for the lambdarun tests: it echoes its event, reports the
// environment it sees and its pid, and fails, panics or sleeps on request.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	Lookup []string `json:"lookup"` // env var names to report
	Fail   string   `json:"fail"`   // return an echoError with this message
	Panic  string   `json:"panic"`  // panic with this message
	Sleep  string   `json:"sleep"`  // a time.Duration to sleep before answering
	Exit   bool     `json:"exit"`   // exit(3) without answering, like a crash
}

type response struct {
	Event    json.RawMessage    `json:"event"`
	Greeting string             `json:"greeting"` // ECHO_GREETING
	Env      map[string]*string `json:"env"`      // nil when a looked-up variable is unset
	Pid      int                `json:"pid"`
}

type echoError struct{ msg string }

func (e *echoError) Error() string { return e.msg }

func handle(ctx context.Context, event json.RawMessage) (response, error) {
	var req request
	if err := json.Unmarshal(event, &req); err != nil {
		return response{}, fmt.Errorf("decode event: %w", err)
	}
	if req.Sleep != "" {
		d, err := time.ParseDuration(req.Sleep)
		if err != nil {
			return response{}, fmt.Errorf("parse sleep: %w", err)
		}
		fmt.Fprintf(os.Stderr, "echofn: sleeping %v\n", d) // tests wait for this line
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return response{}, ctx.Err()
		}
	}
	if req.Exit {
		os.Exit(3)
	}
	if req.Panic != "" {
		panic(req.Panic)
	}
	if req.Fail != "" {
		return response{}, &echoError{msg: req.Fail}
	}
	env := make(map[string]*string, len(req.Lookup))
	for _, name := range req.Lookup {
		if v, ok := os.LookupEnv(name); ok {
			env[name] = &v
		} else {
			env[name] = nil
		}
	}
	fmt.Fprintf(os.Stderr, "echofn: handled event of %d bytes\n", len(event))
	return response{Event: event, Greeting: os.Getenv("ECHO_GREETING"), Env: env, Pid: os.Getpid()}, nil
}

func main() { lambda.Start(handle) }
