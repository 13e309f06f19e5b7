package moto

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// Secrets Manager's RotateSecret "creates a new version of the secret with the staging label
// AWSPENDING" (still empty) and then invokes the rotation function's steps with that version's id as
// ClientRequestToken; createSecret stores the value into it. moto_server cannot hold an empty version
// without its Docker-based Lambda backend, so the proxy plays that part for DescribeSecret: after
// BeginRotation, the secret's description shows the token carrying AWSPENDING (and no other version
// carrying it) until a version with that id really exists. Everything else is moto's. With it the
// real rotation bootstrap runs all four steps against the local stack.

// rotations are the started rotations, by secret name.
type rotations struct {
	mu      sync.Mutex
	started map[string]string // secret name -> token
}

// BeginRotation starts a rotation of the named secret (its name, not its ARN) with token, as
// RotateSecret would after rotation was turned on.
func (p *AtomicProxy) BeginRotation(secretName, token string) {
	p.rot.mu.Lock()
	defer p.rot.mu.Unlock()
	if p.rot.started == nil {
		p.rot.started = map[string]string{}
	}
	p.rot.started[secretName] = token
}

func (r *rotations) any() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started) > 0
}

// isDescribe says whether the request is a DescribeSecret call.
func isDescribe(h http.Header) bool {
	return h.Get("X-Amz-Target") == "secretsmanager.DescribeSecret"
}

// rewriteDescribe adds the pending empty version of a started rotation to a DescribeSecret answer.
func (r *rotations) rewriteDescribe(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	out := body
	var d map[string]any
	if json.Unmarshal(body, &d) == nil {
		name, _ := d["Name"].(string)
		r.mu.Lock()
		token := r.started[name]
		r.mu.Unlock()
		stages, _ := d["VersionIdsToStages"].(map[string]any)
		if _, stored := stages[token]; token != "" && !stored {
			if stages == nil {
				stages = map[string]any{}
			}
			for id, v := range stages {
				list, _ := v.([]any)
				stages[id] = slices.DeleteFunc(slices.Clone(list), func(s any) bool { return s == "AWSPENDING" })
			}
			stages[token] = []any{"AWSPENDING"}
			d["VersionIdsToStages"] = stages
			if b, err := json.Marshal(d); err == nil {
				out = b
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}
