package lambdarun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// TimeoutErrorType is the FunctionError.Type of an invoke that ran past the function's timeout; it is
// what Lambda itself reports.
const TimeoutErrorType = "Sandbox.Timedout"

// Result is the outcome of one invoke the emulator answered.
type Result struct {
	// Payload is the JSON the function returned, or for a function error the error document
	// {"errorMessage", "errorType", ...}.
	Payload       json.RawMessage
	FunctionError *FunctionError // nil when the function succeeded
	Duration      time.Duration  // from sending the event to the complete answer, init included
}

// FunctionError is an error the function reported (a returned error, a panic, a crash or a timeout),
// as opposed to a failure of the runner.
type FunctionError struct {
	Type    string // errorType, e.g. the Go error's type name, or TimeoutErrorType
	Message string // errorMessage
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// parseResponse interprets the emulator's answer. It reports a handler error as HTTP 200 with an
// error document and no X-Amz-Function-Error header, a crash (such as a panic) as HTTP 502 with the
// same document, and a timeout as HTTP 200 with the plain text "Task timed out after N.00 seconds".
func parseResponse(status int, body []byte) (Result, error) {
	trimmed := bytes.TrimSpace(body)
	if status == http.StatusOK && bytes.HasPrefix(trimmed, []byte("Task timed out after ")) {
		fe := &FunctionError{Type: TimeoutErrorType, Message: string(trimmed)}
		payload, err := json.Marshal(map[string]string{"errorType": fe.Type, "errorMessage": fe.Message})
		if err != nil {
			return Result{}, err
		}
		return Result{Payload: payload, FunctionError: fe}, nil
	}
	if fe := errorDocument(trimmed); fe != nil {
		return Result{Payload: json.RawMessage(trimmed), FunctionError: fe}, nil
	}
	if status != http.StatusOK {
		return Result{}, fmt.Errorf("aws-lambda-rie answered HTTP %d: %s", status, snippet(trimmed))
	}
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return Result{}, fmt.Errorf("the function's answer is not JSON: %s", snippet(trimmed))
	}
	return Result{Payload: json.RawMessage(trimmed)}, nil
}

// errorDocument recognises the runtime's error shape: a JSON object with string errorMessage and
// errorType and nothing else but optional stackTrace/cause. A successful payload of exactly that
// shape is indistinguishable here, as with sam local.
func errorDocument(body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	var fe FunctionError
	if json.Unmarshal(doc["errorType"], &fe.Type) != nil || json.Unmarshal(doc["errorMessage"], &fe.Message) != nil {
		return nil
	}
	for k := range doc {
		switch k {
		case "errorType", "errorMessage", "stackTrace", "cause":
		default:
			return nil
		}
	}
	return &fe
}

// snippet keeps error messages short: the emulator's answers are the function's output.
func snippet(b []byte) string {
	const limit = 200
	s := string(b)
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	if strings.TrimSpace(s) == "" {
		return "(empty)"
	}
	return fmt.Sprintf("%q", s)
}
