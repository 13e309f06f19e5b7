package secretstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// CertVersion is one version of a syncer or proxy certificate secret. The private key, if any, is
// left out: only CertWithKey returns it.
type CertVersion struct {
	VersionID   string
	Stages      []string
	Certificate string // PEM
	HasKey      bool   // the version holds a private key (replica-tls manages its rotation)
	Created     time.Time
}

// Has tells whether the version carries stage.
func (v CertVersion) Has(stage string) bool { return slices.Contains(v.Stages, stage) }

// certSecret is the JSON of <prefix>clusters/<name>/syncer and .../proxy.
type certSecret struct {
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"private_key,omitempty"`
}

// parseCert decodes and checks a certificate secret. The key's PEM form is checked, not whether it
// matches the certificate: that costs a key parse and only CertWithKey needs it.
func parseCert(at string, v secretValue) (certSecret, error) {
	if !v.HasString {
		return certSecret{}, invalidf("%s: not a JSON string secret", at)
	}
	var c certSecret
	if err := decodeJSON(at, v.String, &c); err != nil {
		return certSecret{}, err
	}
	if p := certProblem(c.Certificate); p != "" {
		return certSecret{}, invalidf("%s: field certificate: %s", at, p)
	}
	if c.PrivateKey != "" {
		if p := keyProblem(c.PrivateKey); p != "" {
			return certSecret{}, invalidf("%s: field private_key: %s", at, p)
		}
	}
	return c, nil
}

// CertVersions returns every version of a cluster's syncer or proxy secret that carries at least one
// stage, newest first. ErrNotFound means the secret does not exist.
func (s *Store) CertVersions(ctx context.Context, cluster string, kind Kind) ([]CertVersion, error) {
	name, err := s.certSecretName(cluster, kind)
	if err != nil {
		return nil, err
	}
	list, err := s.versions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]CertVersion, 0, len(list))
	for _, e := range list {
		// By version id: values of a version never change, and this avoids moto's stale-stage bug.
		v, err := s.value(ctx, name, "", e.ID)
		if errors.Is(err, ErrNotFound) && slices.Equal(e.Stages, []string{StagePending}) {
			// A rotation has started: Secrets Manager labels the token's version AWSPENDING before
			// the rotation function's createSecret stores its value. There is nothing to read yet.
			continue
		}
		if err != nil {
			return nil, err
		}
		c, err := parseCert(where(name, "", e.ID), v)
		if err != nil {
			return nil, err
		}
		created := v.Created // moto reports "now" as CreatedDate in ListSecretVersionIds
		if created.IsZero() {
			created = e.Created
		}
		out = append(out, CertVersion{
			VersionID:   e.ID,
			Stages:      slices.Clone(e.Stages),
			Certificate: c.Certificate,
			HasKey:      c.PrivateKey != "",
			Created:     created,
		})
	}
	slices.SortStableFunc(out, newestFirst)
	return out, nil
}

// newestFirst orders by creation time, newest first. Creation times have one-second resolution
// on some backends, so ties fall back to the stage order of a rotation (pending, current,
// previous), then to the version id for a stable result.
func newestFirst(a, b CertVersion) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	if c := stageRank(a) - stageRank(b); c != 0 {
		return c
	}
	return strings.Compare(a.VersionID, b.VersionID)
}

func stageRank(v CertVersion) int {
	switch {
	case v.Has(StagePending):
		return 0
	case v.Has(StageCurrent):
		return 1
	case v.Has(StagePrevious):
		return 2
	default:
		return 3
	}
}

// Cert reads the version of a cluster's syncer or proxy secret that carries stage.
func (s *Store) Cert(ctx context.Context, cluster string, kind Kind, stage string) (CertVersion, error) {
	name, err := s.certSecretName(cluster, kind)
	if err != nil {
		return CertVersion{}, err
	}
	if stage == "" {
		return CertVersion{}, invalidf("secret %s: a version stage is required", name)
	}
	v, err := s.value(ctx, name, stage, "")
	if err != nil {
		return CertVersion{}, err
	}
	c, err := parseCert(where(name, stage, ""), v)
	if err != nil {
		return CertVersion{}, err
	}
	return CertVersion{
		VersionID:   v.VersionID,
		Stages:      slices.Clone(v.Stages),
		Certificate: c.Certificate,
		HasKey:      c.PrivateKey != "",
		Created:     v.Created,
	}, nil
}

// CertWithKey returns the certificate and private key of one version, for rotation only. A version
// without a key, or whose key does not belong to its certificate, is ErrInvalid.
func (s *Store) CertWithKey(ctx context.Context, cluster string, kind Kind, versionID string) (certPEM, keyPEM string, err error) {
	name, err := s.certSecretName(cluster, kind)
	if err != nil {
		return "", "", err
	}
	if versionID == "" {
		return "", "", invalidf("secret %s: a version id is required", name)
	}
	v, err := s.value(ctx, name, "", versionID)
	if err != nil {
		return "", "", err
	}
	at := where(name, "", versionID)
	c, err := parseCert(at, v)
	if err != nil {
		return "", "", err
	}
	if c.PrivateKey == "" {
		return "", "", invalidf("%s: field private_key: missing", at)
	}
	if p := pairProblem(c.Certificate, c.PrivateKey); p != "" {
		return "", "", invalidf("%s: field private_key: %s", at, p)
	}
	return c.Certificate, c.PrivateKey, nil
}

// PutCert is a new version of a certificate secret.
type PutCert struct {
	Certificate string   // PEM, required
	PrivateKey  string   // PEM, optional: only where replica-tls manages the rotation
	Token       string   // ClientRequestToken, which becomes the version id; empty means random
	Stages      []string // empty means AWSCURRENT
}

// PutCert stores a new version of a cluster's syncer or proxy secret and returns its version id.
// It creates the secret when it does not exist yet; that first version is always AWSCURRENT too
// (a Secrets Manager rule), plus the stages asked for. The same Token with the same content is
// idempotent. Invalid input changes nothing.
func (s *Store) PutCert(ctx context.Context, cluster string, kind Kind, in PutCert) (versionID string, err error) {
	name, err := s.certSecretName(cluster, kind)
	if err != nil {
		return "", err
	}
	at := "secret " + name
	if p := certProblem(in.Certificate); p != "" {
		return "", invalidf("%s: field certificate: %s", at, p)
	}
	if in.PrivateKey != "" {
		if p := keyProblem(in.PrivateKey); p != "" {
			return "", invalidf("%s: field private_key: %s", at, p)
		}
		if p := pairProblem(in.Certificate, in.PrivateKey); p != "" {
			return "", invalidf("%s: field private_key: %s", at, p)
		}
	}
	for _, st := range in.Stages {
		if st == "" {
			return "", invalidf("%s: empty version stage", at)
		}
	}
	token := in.Token
	if token == "" {
		token = newToken()
	} else if err := checkToken(token); err != nil {
		return "", fmt.Errorf("%s: %w", at, err)
	}
	body, err := json.Marshal(certSecret{Certificate: in.Certificate, PrivateKey: in.PrivateKey})
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", at, err)
	}
	return s.put(ctx, name, string(body), token, slices.Clone(in.Stages))
}

// clientsSecret is the JSON of <prefix>databases/<cluster>/<uid>/clients.
type clientsSecret struct {
	Certificates *[]string `json:"certificates"` // pointer: tells a missing field from an empty list
}

// ClientCerts returns the client certificates database uid of cluster trusts in TLS scope "all".
// It returns nil, nil when the secret does not exist.
func (s *Store) ClientCerts(ctx context.Context, cluster string, uid int) ([]string, error) {
	if err := checkClusterName(cluster); err != nil {
		return nil, err
	}
	if uid <= 0 {
		return nil, invalidf("database uid %d: must be positive", uid)
	}
	name := s.clientsSecretName(cluster, uid)
	v, err := s.value(ctx, name, StageCurrent, "")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	at := "secret " + name
	if !v.HasString {
		return nil, invalidf("%s: not a JSON string secret", at)
	}
	var c clientsSecret
	if err := decodeJSON(at, v.String, &c); err != nil {
		return nil, err
	}
	if c.Certificates == nil {
		return nil, invalidf("%s: field certificates: missing", at)
	}
	for i, pem := range *c.Certificates {
		if p := certProblem(pem); p != "" {
			return nil, invalidf("%s: field certificates[%d]: %s", at, i, p)
		}
	}
	return slices.Clone(*c.Certificates), nil
}
