package reconcile

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/replica-tls/replica-tls/shared/reapi"
	redaction "github.com/replica-tls/replica-tls/shared/redact"
)

// ErrUnknownCluster is what a Registry returns (wrapped) for a cluster name that is not registered.
var ErrUnknownCluster = errors.New("cluster not registered")

// ErrNoCertificate is what a CertSource returns (wrapped) when a certificate secret does not exist.
var ErrNoCertificate = errors.New("no certificate stored")

// ErrInvalidSecret is what a CertSource returns (wrapped) when a stored certificate secret is
// unusable: malformed JSON, not PEM, a private key where the certificate belongs. Such a link is
// refused (rejected, no change), not retried.
var ErrInvalidSecret = errors.New("unusable certificate secret")

// rejectInvalidSecret turns a CertSource's ErrInvalidSecret into a rejection.
func rejectInvalidSecret(what string, err error) error {
	code := CodeInvalidCertificate
	if strings.Contains(strings.ToLower(err.Error()), "private key") {
		code = CodePrivateKey
	}
	return reject(code, what+": "+redact(err.Error()), err)
}

// Reject codes: why a link was refused before anything was changed. Certificate codes match the
// Redis Enterprise API's own error_code values where one exists.
const (
	CodeInvalidPolicy      = "invalid_policy"
	CodeUnknownCluster     = "unknown_cluster"
	CodeUnknownDatabase    = "unknown_database"
	CodeNotReplica         = "not_a_replica"
	CodeUnknownLink        = "unknown_link"
	CodeUnresolvedSource   = "unresolved_source"
	CodeNoCertificate      = "no_certificate"
	CodeInvalidCertificate = "invalid_certificate"
	CodePrivateKey         = "private_key"
	CodeExpired            = "certificate_expired"
	CodeWrongUsage         = "wrong_usage"
	CodeEmptyTrustList     = "empty_trust_list"
)

// RejectError is bad input: the reconciler refused to act and changed nothing. Callers branch on it
// (errors.As) to answer "rejected" rather than "failed", and never retry it.
type RejectError struct {
	Code    string // one of the Code* constants
	Message string // says what was wrong and where; never secret material
	Err     error  // the underlying cause, if any
}

func (e *RejectError) Error() string { return e.Code + ": " + e.Message }

// Unwrap exposes the cause (for example certs.ErrExpired).
func (e *RejectError) Unwrap() error { return e.Err }

func reject(code, msg string, cause error) *RejectError {
	return &RejectError{Code: code, Message: msg, Err: cause}
}

// redact removes secret material from outside text (cluster error messages such as a link's
// last_error, adapter errors), which may echo what it was given.
func redact(s string) string { return redaction.String(s) }

// scrub returns err unchanged when its text is clean, or wrapped so that its text is redacted;
// errors.Is and errors.As still see the whole chain.
func scrub(err error) error { return redaction.Error(err) }

// errorCode names a failure for the audit event: the reject code, the API's error_code, or a class.
func errorCode(err error) string {
	var rej *RejectError
	var api *reapi.Error
	var own coded
	switch {
	case errors.As(err, &rej):
		return rej.Code
	case errors.As(err, &own):
		return own.ErrorCode()
	case reapi.ErrorCode(err) != "":
		// The client's own classes (unreachable, timeout, partially_applied, response_too_large)
		// before the API's error_code they may wrap.
		return reapi.ErrorCode(err)
	case errors.As(err, &api):
		if api.Code != "" {
			return api.Code
		}
		return "http_" + strconv.Itoa(api.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errVerify):
		return "verify_failed"
	case errors.Is(err, errAudit):
		return "audit_unavailable"
	default:
		return "error"
	}
}

var (
	errVerify = errors.New("read-back does not show the desired state")
	errAudit  = errors.New("started event not accepted by the audit trail: nothing changed")
)
