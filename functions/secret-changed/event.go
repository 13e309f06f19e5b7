package main

import (
	"encoding/json"
	"strings"

	"github.com/replica-tls/replica-tls/shared/trigger"
)

// The native event Secrets Manager sends to the default bus when a staging label moves (every label
// but AWSPENDING and AWSPREVIOUS).
const (
	sourceSecretsManager = "aws.secretsmanager"
	detailLabelUpdated   = "Secret Label Updated"
)

// change is the secret whose label moved.
type change struct {
	Secret  string // name, or ARN when the detail has no name
	Label   string
	Version string
}

// labelDetail is the event's detail; fields AWS may add later are ignored.
type labelDetail struct {
	Name         string `json:"name"`
	LabelUpdated string `json:"labelUpdated"`
	VersionID    string `json:"versionId"`
}

// decodeChange reads a "Secret Label Updated" event, or its bare detail (a direct invoke). CloudTrail
// events are not accepted: the native event already covers every AWSCURRENT move without CloudTrail,
// and AWSPENDING/AWSPREVIOUS moves need no reconcile (the rotation function and the sweep handle them).
func decodeChange(env trigger.Envelope) (change, error) {
	if !env.Bare() {
		if env.DetailType != detailLabelUpdated {
			return change{}, &trigger.InvalidError{Field: "detail-type", Reason: "want \"" + detailLabelUpdated + "\", got \"" + clip(env.DetailType) + "\""}
		}
		if env.Source != sourceSecretsManager {
			return change{}, &trigger.InvalidError{Field: "source", Reason: "want " + sourceSecretsManager}
		}
	}
	var d labelDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return change{}, &trigger.InvalidError{Field: "detail", Reason: "not a Secret Label Updated detail object"}
	}
	c := change{Secret: strings.TrimSpace(d.Name), Label: d.LabelUpdated, Version: d.VersionID}
	if c.Secret == "" && len(env.Resources) > 0 {
		c.Secret = env.Resources[0]
	}
	switch {
	case c.Secret == "":
		return change{}, &trigger.InvalidError{Field: "detail.name", Reason: "missing (and no secret ARN in resources)"}
	case c.Label == "":
		return change{}, &trigger.InvalidError{Field: "detail.labelUpdated", Reason: "missing"}
	}
	return c, nil
}

// clip bounds text taken from an event before it is quoted in messages and audit events.
func clip(s string) string {
	const max = 256 // secret names have at most 512 characters; the start says which one it is
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
