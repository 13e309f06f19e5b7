package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// GetCluster reads the cluster object (GET /v1/cluster): its name and its proxy and syncer
// certificates, without keys.
func (c *Client) GetCluster(ctx context.Context) (reapi.Cluster, error) {
	var cl reapi.Cluster
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/cluster", decode: into(&cl)}); err != nil {
		return reapi.Cluster{}, fmt.Errorf("get cluster info on %s: %w", c.name, err)
	}
	return cl, nil
}

// UpdateCertificate replaces one cluster certificate and its key with
// PUT /v1/cluster/certificates (Redis Enterprise 7.22.2+). A 404 or 405 there means an older
// cluster: the client falls back to the deprecated PUT /v1/cluster/update_cert and keeps using it
// for the rest of its life.
//
// Both calls answer 409 when "not all nodes have been updated". That is retried like any 409 (the
// same certificate again is harmless); when the retries run out the error is a *reapi.CallError
// coded partially_applied: some nodes may already present the new certificate.
func (c *Client) UpdateCertificate(ctx context.Context, u reapi.CertUpdate) error {
	if u.Name == "" || u.Certificate == "" || u.Key == "" {
		return fmt.Errorf("update %q certificate on %s: name, certificate and key are all required", u.Name, c.name)
	}
	if !c.legacyCertAPI.Load() {
		body := struct {
			Certificates []reapi.CertUpdate `json:"certificates"`
		}{[]reapi.CertUpdate{u}}
		const path = "/v1/cluster/certificates"
		err := c.do(ctx, call{method: http.MethodPut, path: path, body: body, write: true})
		var apiErr *reapi.Error
		if !errors.As(err, &apiErr) || (apiErr.StatusCode != http.StatusNotFound && apiErr.StatusCode != http.StatusMethodNotAllowed) {
			if err != nil {
				return fmt.Errorf("update %s certificate on %s: %w", u.Name, c.name, c.partial(path, err))
			}
			return nil
		}
		c.legacyCertAPI.Store(true)
		c.log.DebugContext(ctx, "cluster api: certificates endpoint missing, using update_cert",
			"cluster", c.name, "status", apiErr.StatusCode)
	}
	const path = "/v1/cluster/update_cert"
	if err := c.do(ctx, call{method: http.MethodPut, path: path, body: u, write: true}); err != nil {
		return fmt.Errorf("update %s certificate on %s (legacy update_cert): %w", u.Name, c.name, c.partial(path, err))
	}
	return nil
}

// partial marks a failed certificate update that met a 409 as partially applied.
func (c *Client) partial(path string, err error) error {
	var apiErr *reapi.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		return err
	}
	return &reapi.CallError{Code: reapi.CodePartiallyApplied, Cluster: c.name, Method: http.MethodPut, Path: path,
		Err: fmt.Errorf("the cluster kept answering 409, not all nodes have been updated: some may present the new certificate, others the old one: %w", err)}
}

// GetAction reads an asynchronous action (GET /v1/actions/{uid}).
func (c *Client) GetAction(ctx context.Context, actionUID string) (reapi.Action, error) {
	if actionUID == "" {
		return reapi.Action{}, fmt.Errorf("get action on %s: action uid is required", c.name)
	}
	var a reapi.Action
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/actions/" + url.PathEscape(actionUID), decode: into(&a)}); err != nil {
		return reapi.Action{}, fmt.Errorf("get action %s on %s: %w", actionUID, c.name, err)
	}
	return a, nil
}
