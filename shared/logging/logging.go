// Package logging builds the functions' logger: JSON lines in Lambda's own log format (timestamp,
// level, message, requestId), at the level Lambda's logging configuration or the project's LOG_LEVEL
// asks for, with handler errors redacted before they are written.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/replica-tls/replica-tls/shared/audit"
)

// Environment variables New reads.
const (
	// EnvLambdaLogLevel is set by Lambda from the function's LoggingConfig.ApplicationLogLevel.
	EnvLambdaLogLevel = "AWS_LAMBDA_LOG_LEVEL"
	// EnvLogLevel is the project's own setting (template parameter LogLevel), used when Lambda's is unset.
	EnvLogLevel = "LOG_LEVEL"
)

// Lambda's two levels slog lacks. Lambda filters JSON logs on the level member, so these are written
// as "TRACE" and "FATAL", not slog's "DEBUG-4" and "ERROR+4".
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
)

// New returns a logger writing JSON lines to w (os.Stdout in Lambda). A line logged with a context
// from a Lambda invocation carries its requestId.
//
// The handler is lambdacontext's (aws-lambda-go): the same member names through its ReplaceAttr and
// the request id from its FromContext. Its NewLogHandler itself cannot be used: it writes to
// os.Stdout only and reads its level from the process environment when the package loads, so
// neither w nor getenv nor the LOG_LEVEL fallback would reach it.
func New(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	level, err := LevelFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return NewAt(w, level), nil
}

// NewAt is New at a level already read (LevelFromEnv).
func NewAt(w io.Writer, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr})
	return slog.New(requestIDHandler{h})
}

// LevelFromEnv returns the level AWS_LAMBDA_LOG_LEVEL names (TRACE, DEBUG, INFO, WARN, ERROR, FATAL),
// or failing that LOG_LEVEL (debug, info, warn, error), or info. An unknown value in either is an
// error, even where the other decides the level: a typo must not pass unnoticed.
func LevelFromEnv(getenv func(string) string) (slog.Level, error) {
	lambda, lambdaSet, err := parseLambdaLevel(getenv(EnvLambdaLogLevel))
	if err != nil {
		return 0, err
	}
	project, projectSet, err := parseProjectLevel(getenv(EnvLogLevel))
	if err != nil {
		return 0, err
	}
	switch {
	case lambdaSet:
		return lambda, nil
	case projectSet:
		return project, nil
	}
	return slog.LevelInfo, nil
}

func parseLambdaLevel(v string) (slog.Level, bool, error) {
	switch strings.ToUpper(v) {
	case "":
		return 0, false, nil
	case "TRACE":
		return LevelTrace, true, nil
	case "DEBUG":
		return slog.LevelDebug, true, nil
	case "INFO":
		return slog.LevelInfo, true, nil
	case "WARN":
		return slog.LevelWarn, true, nil
	case "ERROR":
		return slog.LevelError, true, nil
	case "FATAL":
		return LevelFatal, true, nil
	}
	return 0, false, fmt.Errorf("%s=%q: want TRACE, DEBUG, INFO, WARN, ERROR or FATAL", EnvLambdaLogLevel, v)
}

// parseProjectLevel accepts what lambdaapp.ConfigFromEnv accepts for LOG_LEVEL.
func parseProjectLevel(v string) (slog.Level, bool, error) {
	switch strings.ToLower(v) {
	case "":
		return 0, false, nil
	case "debug":
		return slog.LevelDebug, true, nil
	case "info":
		return slog.LevelInfo, true, nil
	case "warn", "warning":
		return slog.LevelWarn, true, nil
	case "error":
		return slog.LevelError, true, nil
	}
	return 0, false, fmt.Errorf("%s=%q: want debug, info, warn or error", EnvLogLevel, v)
}

// replaceAttr renames time and msg as Lambda's format has them (lambdacontext.ReplaceAttr) and
// writes every level as one of Lambda's six names, which Lambda's level filter understands.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	a = lambdacontext.ReplaceAttr(groups, a)
	if len(groups) > 0 || a.Key != slog.LevelKey {
		return a
	}
	level, ok := a.Value.Any().(slog.Level)
	if !ok {
		return a
	}
	return slog.String(slog.LevelKey, levelName(level))
}

func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARN"
	case l < LevelFatal:
		return "ERROR"
	}
	return "FATAL"
}

// requestIDHandler adds the invocation's request id, as lambdacontext's own handler does.
type requestIDHandler struct {
	slog.Handler
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// Error logs a handler's error at error level with its text passed through audit.Redact, so a
// private key, a password or a URI with credentials quoted in an error (an API response, a parse
// failure) never reaches the log group. msg is redacted too; args are slog key-value pairs or Attrs
// and are written as given, so they must hold no secret material.
func Error(ctx context.Context, logger *slog.Logger, msg string, err error, args ...any) {
	if logger == nil {
		return
	}
	text := ""
	if err != nil {
		text = audit.Redact(err.Error())
	}
	logger.ErrorContext(ctx, audit.Redact(msg), append([]any{slog.String("error", text)}, args...)...)
}
