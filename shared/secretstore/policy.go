package secretstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// DBPolicy is what an event stated for a source database's links: its TLS scope and whether client
// authentication is enforced. Stored so that runs without a stated policy (the sweep, a
// registration, a rotation) keep the choice instead of applying defaults.
type DBPolicy struct {
	TLSScope             string `json:"tls_scope"` // "replica" or "all"
	ClientAuthentication bool   `json:"client_authentication"`
}

func (s *Store) policySecretName(cluster string, uid int) (string, error) {
	if err := checkClusterName(cluster); err != nil {
		return "", err
	}
	if uid <= 0 {
		return "", invalidf("database uid %d: must be positive", uid)
	}
	return s.prefix + "databases/" + cluster + "/" + strconv.Itoa(uid) + "/policy", nil
}

func (p DBPolicy) validate(at string) error {
	if p.TLSScope != "replica" && p.TLSScope != "all" {
		return invalidf("%s: field tls_scope: must be replica or all", at)
	}
	return nil
}

// DBPolicy returns the policy stored for a database; ok is false when none is stored.
func (s *Store) DBPolicy(ctx context.Context, cluster string, uid int) (p DBPolicy, ok bool, err error) {
	name, err := s.policySecretName(cluster, uid)
	if err != nil {
		return DBPolicy{}, false, err
	}
	v, err := s.value(ctx, name, StageCurrent, "")
	if errors.Is(err, ErrNotFound) {
		return DBPolicy{}, false, nil
	}
	if err != nil {
		return DBPolicy{}, false, err
	}
	at := "secret " + name
	if !v.HasString {
		return DBPolicy{}, false, invalidf("%s: not a JSON string secret", at)
	}
	var raw struct {
		TLSScope             *string `json:"tls_scope"`
		ClientAuthentication *bool   `json:"client_authentication"`
	}
	if err := decodeJSON(at, v.String, &raw); err != nil {
		return DBPolicy{}, false, err
	}
	if raw.TLSScope == nil || raw.ClientAuthentication == nil {
		return DBPolicy{}, false, invalidf("%s: fields tls_scope and client_authentication are required", at)
	}
	p = DBPolicy{TLSScope: *raw.TLSScope, ClientAuthentication: *raw.ClientAuthentication}
	if err := p.validate(at); err != nil {
		return DBPolicy{}, false, err
	}
	return p, true, nil
}

// PutDBPolicy stores the policy for a database as a new AWSCURRENT version, unless it is already the
// stored one; changed says which.
func (s *Store) PutDBPolicy(ctx context.Context, cluster string, uid int, p DBPolicy) (changed bool, err error) {
	name, err := s.policySecretName(cluster, uid)
	if err != nil {
		return false, err
	}
	if err := p.validate("secret " + name); err != nil {
		return false, err
	}
	if cur, ok, err := s.DBPolicy(ctx, cluster, uid); err == nil && ok && cur == p {
		return false, nil
	}
	body, err := json.Marshal(p)
	if err != nil {
		return false, fmt.Errorf("encode secret %s: %w", name, err)
	}
	if _, err := s.put(ctx, name, string(body), newToken(), nil); err != nil {
		return false, err
	}
	return true, nil
}
