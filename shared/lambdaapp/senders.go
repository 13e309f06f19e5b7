package lambdaapp

import (
	"fmt"
	"slices"
	"strings"

	"github.com/replica-tls/replica-tls/shared/trigger"
)

// CheckSender refuses an EventBridge event from a source the stack does not trust: anyone who can
// put events on the bus could otherwise lower a database's security. Bare payloads (a direct invoke,
// which IAM guards) carry no source and pass.
func (a *App) CheckSender(env trigger.Envelope) error {
	if env.Bare() || len(a.Config.AllowedSources) == 0 || slices.Contains(a.Config.AllowedSources, env.Source) {
		return nil
	}
	return &trigger.InvalidError{Field: "source", Reason: fmt.Sprintf("%q is not a trusted sender (%s: %s)",
		clip(env.Source), EnvAllowedSources, strings.Join(a.Config.AllowedSources, ", "))}
}

// CheckPolicy refuses a stated policy below the stack's defaults (client authentication off, or a
// TLS scope narrower than DEFAULT_TLS_SCOPE) unless the stack allows it (ALLOW_POLICY_DOWNGRADE).
func (a *App) CheckPolicy(ev trigger.ReplicaCreated) error {
	if a.Config.AllowDowngrade {
		return nil
	}
	if ev.ClientAuthentication != nil && !*ev.ClientAuthentication {
		return &trigger.InvalidError{Field: "detail.client_authentication", Reason: "false is below the stack's default (client authentication enforced); the stack must allow it (AllowPolicyDowngrade)"}
	}
	if ev.TLSScope == trigger.ScopeReplica && a.Config.DefaultScope == trigger.ScopeAll {
		return &trigger.InvalidError{Field: "detail.tls_scope", Reason: "replica is narrower than the stack's default scope all; the stack must allow it (AllowPolicyDowngrade)"}
	}
	return nil
}
