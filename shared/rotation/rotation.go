// Package rotation rotates a Redis Enterprise cluster's syncer or proxy certificate through the Secrets
// Manager rotation protocol (createSecret, setSecret, testSecret, finishSecret) without interrupting
// replication: trust first, swap second (docs/architecture.md).
//
//   - Syncer certificate of destination cluster D: the pending certificate is added to the trust list of
//     every source database replicating to D, and read back, before D presents it.
//   - Proxy certificate of source cluster C: C presents the pending certificate first (established
//     replication connections survive it), then every destination entry pointing at C is updated at
//     once. A destination entry holds one server_cert, so new connections fail in between: the window is
//     kept short and reported (Result.WindowMs, audit).
//
// Every step is re-entrant, guarded the standard way (rotation enabled, token a version of the secret,
// token AWSCURRENT = done, token not AWSPENDING = refused) and audited with audit.DetailRotation. The
// package declares the small interfaces it needs; cluster writes go through the reconciler (source
// trust lists, destination entries) or CertInstaller (the certificate itself).
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// Step is a step of the Secrets Manager rotation protocol, as the service names it.
type Step string

// The four steps, in the order the service calls them.
const (
	CreateSecret Step = "createSecret"
	SetSecret    Step = "setSecret"
	TestSecret   Step = "testSecret"
	FinishSecret Step = "finishSecret"
)

// Audit step names (every event has detail type audit.DetailRotation).
const (
	AuditRequest = "rotation-request" // a request naming no known step
	AuditCreate  = "rotation-create-secret"
	AuditSet     = "rotation-set-secret"
	AuditTrust   = "rotation-verify-trust"        // setSecret, syncer: every source trusts the pending certificate
	AuditInstall = "rotation-install-certificate" // setSecret: the cluster gets the pending certificate and key
	AuditUpdate  = "rotation-update-destinations" // setSecret, proxy: destination entries follow
	AuditTest    = "rotation-test-secret"
	AuditFinish  = "rotation-finish-secret"
)

// Reject codes (reconcile.RejectError.Code) of bad rotation requests.
const (
	CodeUnknownStep      = "unknown_step"
	CodeInvalidToken     = "invalid_token"
	CodeNotCertSecret    = "not_a_certificate_secret"
	CodeUnknownSecret    = "unknown_secret"
	CodeRotationDisabled = "rotation_disabled"
	CodeForeignToken     = "unknown_token"
	CodeNotPending       = "not_pending"
	CodeNoPendingValue   = "no_pending_certificate"
	CodeInvalidPending   = "invalid_pending_certificate"
	CodeInvalidCurrent   = "invalid_current_certificate"
	CodeNotInstalled     = "pending_not_presented"
)

// Secrets is the part of the Secrets Manager store rotation uses (*secretstore.Store).
type Secrets interface {
	ParseSecretName(nameOrARN string) (cluster, what string, ok bool)
	Describe(ctx context.Context, secretID string) (secretstore.Description, error)
	Cert(ctx context.Context, cluster string, kind secretstore.Kind, stage string) (secretstore.CertVersion, error)
	CertWithKey(ctx context.Context, cluster string, kind secretstore.Kind, versionID string) (certPEM, keyPEM string, err error)
	PutCert(ctx context.Context, cluster string, kind secretstore.Kind, in secretstore.PutCert) (string, error)
	MoveStage(ctx context.Context, secretID, stage, toVersion, fromVersion string) error
	RemoveStage(ctx context.Context, secretID, stage, fromVersion string) error
}

// CertInstaller is what the cluster clients of Config.Registry must also do: replace a cluster
// certificate (*cluster.Client does).
type CertInstaller interface {
	UpdateCertificate(ctx context.Context, u reapi.CertUpdate) error
}

// Auditor records audit events; nil means the event was accepted (*audit.Recorder).
type Auditor interface {
	Record(ctx context.Context, e audit.Event) error
}

// Config wires a Rotator. Build one per invocation: Auditor and Reconciler carry the run.
type Config struct {
	Secrets  Secrets
	Registry reconcile.Registry // cluster clients; they must implement CertInstaller
	// Resolver, when set, lets a syncer rotation read only the rotated cluster and its sources.
	Resolver   reconcile.HostResolver
	Reconciler *reconcile.Reconciler
	// Leases guards the cluster's certificate while a step changes it or what trusts it (the
	// reconciler leases each database it writes). nil: reconcile.ProcessLeases().
	Leases   reconcile.Leases
	Auditor  Auditor
	Policy   reconcile.Policy // how links are reconciled while trusting and updating
	Settings Settings         // zero fields take their defaults
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // default: discard
}

// Rotator runs rotation steps.
type Rotator struct {
	cfg Config
}

// New returns a Rotator, filling defaults.
func New(cfg Config) *Rotator {
	cfg.Settings = cfg.Settings.withDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Leases == nil {
		cfg.Leases = reconcile.ProcessLeases()
	}
	return &Rotator{cfg: cfg}
}

// Request is one invocation by Secrets Manager.
type Request struct {
	Step     Step
	SecretID string // ARN or name
	Token    string // ClientRequestToken: the id of the version being rotated in
}

// LinkState is one Replica Of link a step looked at.
type LinkState struct {
	Link      string `json:"link"` // "source cluster/db -> destination cluster/db"
	Status    string `json:"status,omitempty"`
	LastError string `json:"last_error,omitempty"` // redacted
	Error     string `json:"error,omitempty"`      // why the step could not handle it, redacted
}

// Result is what a step did. It never holds secret material.
type Result struct {
	Step        Step           `json:"step"`
	Secret      string         `json:"secret,omitempty"`
	Cluster     string         `json:"cluster,omitempty"`
	Kind        string         `json:"kind,omitempty"`
	Outcome     audit.Outcome  `json:"outcome"`
	Certificate *certs.Summary `json:"certificate,omitempty"` // the pending certificate
	Links       []LinkState    `json:"links,omitempty"`
	Calls       int            `json:"cluster_api_calls"` // this step's own plus the reconciler's
	Writes      int            `json:"cluster_api_writes"`
	WindowMs    int64          `json:"proxy_window_ms,omitempty"` // proxy setSecret: swap to last destination updated
	Message     string         `json:"message,omitempty"`
}

// request is a Request that passed the guard.
type request struct {
	Request
	name    string // the secret's name
	cluster string
	kind    secretstore.Kind
	desc    secretstore.Description
	state   tokenState
	pending *certs.Summary
	start   time.Time
	aa      *activeActivePlan // setSecret: the cluster's Active-Active databases, checked first
}

type tokenState int

const (
	tokenPending tokenState = iota // the token carries AWSPENDING only: the rotation is under way
	tokenCurrent                   // the token is AWSCURRENT already: the step has nothing left to do
)

// Handle runs one step. A bad request gives a *reconcile.RejectError, a rejected audit event and no
// change; any other error leaves the rotation to be retried (every step is re-entrant).
func (r *Rotator) Handle(ctx context.Context, in Request) (Result, error) {
	req := &request{Request: in, start: r.cfg.Now()}
	res := Result{Step: in.Step}
	if err := r.guard(ctx, req); err != nil {
		res.Outcome = outcomeOf(err)
		res.Secret, res.Cluster, res.Kind = req.name, req.cluster, string(req.kind)
		res.Message = audit.Redact(err.Error())
		return res, r.outcomeEvent(ctx, req, auditStep(req.Step), res.Outcome, err, nil)
	}
	res.Secret, res.Cluster, res.Kind = req.name, req.cluster, string(req.kind)
	var err error
	switch in.Step {
	case CreateSecret:
		err = r.create(ctx, req, &res)
	case SetSecret:
		// The certificate's lease: one rotation step at a time changes this certificate, or what
		// trusts it, whatever else runs (a second rotation of the same secret, a redelivery).
		err = r.leased(ctx, req, func(ctx context.Context) error {
			if req.kind == secretstore.Syncer {
				return r.setSyncer(ctx, req, &res)
			}
			return r.setProxy(ctx, req, &res)
		})
	case TestSecret:
		err = r.test(ctx, req, &res)
	case FinishSecret:
		err = r.leased(ctx, req, func(ctx context.Context) error { return r.finish(ctx, req, &res) })
	}
	res.Certificate = req.pending
	if err != nil {
		res.Outcome = outcomeOf(err)
		res.Message = audit.Redact(err.Error())
		r.cfg.Logger.WarnContext(ctx, "rotation step", "step", string(in.Step), "secret", req.name, "outcome", string(res.Outcome), "error", res.Message)
		return res, err
	}
	r.cfg.Logger.InfoContext(ctx, "rotation step", "step", string(in.Step), "secret", req.name, "outcome", string(res.Outcome), "calls", res.Calls)
	return res, nil
}

// leased runs a step holding the lease on the rotated certificate. A lease that cannot be had is an
// audited failure that changed nothing; Secrets Manager retries the step.
func (r *Rotator) leased(ctx context.Context, req *request, fn func(ctx context.Context) error) error {
	ran := false
	var stepErr error
	resource := reconcile.CertLease(req.cluster, string(req.kind))
	err := r.cfg.Leases.Hold(ctx, resource, func(ctx context.Context) error {
		ran = true
		stepErr = fn(ctx)
		return stepErr
	})
	if !ran {
		return r.outcomeEvent(ctx, req, auditStep(req.Step), audit.Failed, fmt.Errorf("take the lease on %s: %w", resource, err), nil)
	}
	if err != nil && stepErr == nil {
		// The step is done; only the release failed, and the lease expires on its own.
		r.cfg.Logger.WarnContext(ctx, "lease release failed", "resource", resource, "error", audit.Redact(err.Error()))
	}
	return stepErr
}

// auditStep is the audit step name of a protocol step.
func auditStep(s Step) string {
	switch s {
	case CreateSecret:
		return AuditCreate
	case SetSecret:
		return AuditSet
	case TestSecret:
		return AuditTest
	case FinishSecret:
		return AuditFinish
	}
	return AuditRequest
}

// guard validates the request the standard way. On success req names the secret, its cluster and
// kind, and whether the token is pending or already current.
func (r *Rotator) guard(ctx context.Context, req *request) error {
	switch req.Step {
	case CreateSecret, SetSecret, TestSecret, FinishSecret:
	default:
		return reject(CodeUnknownStep, fmt.Sprintf("step %q: want createSecret, setSecret, testSecret or finishSecret", clip(string(req.Step))))
	}
	if n := len(req.Token); n < 32 || n > 64 {
		return reject(CodeInvalidToken, fmt.Sprintf("ClientRequestToken: must be 32-64 characters, got %d", n))
	}
	if req.SecretID == "" {
		return reject(CodeNotCertSecret, "SecretId is empty")
	}
	cluster, what, ok := r.cfg.Secrets.ParseSecretName(req.SecretID)
	if !ok || (what != string(secretstore.Syncer) && what != string(secretstore.Proxy)) {
		return reject(CodeNotCertSecret, fmt.Sprintf("secret %s is not a syncer or proxy certificate secret of a cluster under the replica-tls prefix", clip(req.SecretID)))
	}
	req.cluster, req.kind = cluster, secretstore.Kind(what)
	desc, err := r.cfg.Secrets.Describe(ctx, req.SecretID)
	if errors.Is(err, secretstore.ErrNotFound) {
		return reject(CodeUnknownSecret, fmt.Sprintf("secret %s does not exist", clip(req.SecretID)))
	}
	if err != nil {
		return fmt.Errorf("describe secret %s: %w", clip(req.SecretID), err)
	}
	req.desc, req.name = desc, desc.Name
	if c, w, ok := r.cfg.Secrets.ParseSecretName(desc.Name); !ok || c != cluster || w != what {
		return reject(CodeNotCertSecret, fmt.Sprintf("secret %s is named %s, not a certificate secret of cluster %s", clip(req.SecretID), desc.Name, cluster))
	}
	if !desc.RotationEnabled {
		return reject(CodeRotationDisabled, fmt.Sprintf("secret %s does not have rotation enabled", desc.Name))
	}
	stages, ok := desc.VersionStages[req.Token]
	switch {
	case !ok:
		return reject(CodeForeignToken, fmt.Sprintf("token %s is not a version of secret %s", req.Token, desc.Name))
	case slices.Contains(stages, secretstore.StageCurrent):
		req.state = tokenCurrent
	case slices.Contains(stages, secretstore.StagePending):
		req.state = tokenPending
	default:
		return reject(CodeNotPending, fmt.Sprintf("version %s of secret %s is not AWSPENDING (stages %v): not being rotated", req.Token, desc.Name, stages))
	}
	return nil
}

// event is an audit event of this request.
func (r *Rotator) event(req *request, step string, o audit.Outcome) audit.Event {
	e := audit.Event{
		DetailType:  audit.DetailRotation,
		Step:        step,
		Outcome:     o,
		Cluster:     req.cluster,
		Certificate: req.pending,
		Details: map[string]any{
			"rotation_step": clip(string(req.Step)),
			"version_id":    clip(req.Token),
		},
		DurationMs: max(0, r.cfg.Now().Sub(req.start).Milliseconds()),
	}
	if req.kind != "" {
		e.Details["kind"] = string(req.kind)
	}
	if req.name != "" {
		e.Details["secret"] = req.name
	}
	return e
}

// record publishes an event; nil means accepted.
func (r *Rotator) record(ctx context.Context, e audit.Event) error {
	if r.cfg.Auditor == nil {
		return fmt.Errorf("record %s %s event: no auditor configured", e.Step, e.Outcome)
	}
	if err := r.cfg.Auditor.Record(ctx, e); err != nil {
		return fmt.Errorf("record %s %s event: %w", e.Step, e.Outcome, err)
	}
	return nil
}

// outcomeEvent records the outcome of a (sub-)step: failed or rejected with err, else o. The audit
// error, if any, is joined to err.
func (r *Rotator) outcomeEvent(ctx context.Context, req *request, step string, o audit.Outcome, err error, details map[string]any) error {
	if err != nil {
		o = outcomeOf(err)
	}
	e := r.event(req, step, o)
	for k, v := range details {
		e.Details[k] = v
	}
	if err != nil {
		e.Error = &audit.ErrorInfo{Code: codeOf(err), Message: audit.Redact(err.Error())} // Redact also bounds the length
	}
	if aerr := r.record(ctx, e); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// started records a started event; the mutation it announces must not happen when this fails
// (invariant 6: audit fails closed).
func (r *Rotator) started(ctx context.Context, req *request, step string, details map[string]any) error {
	e := r.event(req, step, audit.Started)
	for k, v := range details {
		e.Details[k] = v
	}
	if err := r.record(ctx, e); err != nil {
		return fmt.Errorf("%s: nothing changed, the started event was not accepted: %w", step, err)
	}
	return nil
}

func reject(code, msg string) error {
	return &reconcile.RejectError{Code: code, Message: msg}
}

// outcomeOf is rejected for bad input, failed otherwise.
func outcomeOf(err error) audit.Outcome {
	var rej *reconcile.RejectError
	if errors.As(err, &rej) {
		return audit.Rejected
	}
	return audit.Failed
}

// codeOf names an error for audit events.
func codeOf(err error) string {
	var rej *reconcile.RejectError
	var api *reapi.Error
	var aa *activeActiveError
	switch {
	case errors.As(err, &rej):
		return rej.Code
	case errors.As(err, &aa):
		return aa.code
	case reconcile.IsBusy(err):
		return "busy"
	case reapi.ErrorCode(err) != "":
		return reapi.ErrorCode(err)
	case errors.As(err, &api) && api.Code != "":
		return api.Code
	case errors.As(err, &api):
		return fmt.Sprintf("http_%d", api.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, secretstore.ErrInvalid):
		return "invalid_secret"
	default:
		return "error"
	}
}

// clip bounds untrusted text quoted in messages.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
