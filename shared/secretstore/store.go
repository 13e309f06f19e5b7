package secretstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// API is the part of *secretsmanager.Client the Store uses.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

var _ API = (*secretsmanager.Client)(nil)

// DefaultPrefix is the secret name prefix used when Options.Prefix is empty.
const DefaultPrefix = "replica-tls/"

// DefaultCacheTTL is the cache lifetime used when Options.CacheTTL is zero.
const DefaultCacheTTL = 30 * time.Second

// Standard Secrets Manager version stages.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Options configure a Store.
type Options struct {
	Prefix   string           // secret name prefix; empty means DefaultPrefix
	CacheTTL time.Duration    // 0 means DefaultCacheTTL; a negative value disables the cache
	Now      func() time.Time // clock for cache expiry; nil means time.Now
}

// Store reads and writes replica-tls secrets. It is safe for concurrent use.
type Store struct {
	api    API
	prefix string
	ttl    time.Duration // <= 0: no caching
	now    func() time.Time
	cache  cache
}

// New returns a Store over api.
func New(api API, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{api: api, prefix: prefix, ttl: ttl, now: now, cache: cache{items: map[cacheKey]cacheEntry{}}}
}

// Errors callers branch on, with errors.Is.
var (
	ErrNotFound = errors.New("not found") // unknown cluster, secret, stage or version
	ErrInvalid  = errors.New("invalid")   // malformed secret JSON or fields, or bad arguments
)

// storeError carries a message that is safe to log plus the sentinel it matches.
type storeError struct {
	msg   string
	kind  error // ErrNotFound or ErrInvalid
	cause error // optional underlying error (an SDK error never carries a secret value)
}

func (e *storeError) Error() string        { return e.msg }
func (e *storeError) Is(target error) bool { return target == e.kind }
func (e *storeError) Unwrap() error        { return e.cause }

func invalidf(format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

func notFoundf(cause error, format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound, cause: cause}
}

func isNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	return errors.As(err, &rnf)
}

// Kind names a cluster certificate secret.
type Kind string

// The certificate kinds of a cluster.
const (
	Syncer Kind = "syncer"
	Proxy  Kind = "proxy"
)

func (k Kind) valid() bool { return k == Syncer || k == Proxy }

const clusterNameRule = "^[a-z0-9][a-z0-9-]{0,62}$"

// validClusterName checks clusterNameRule without a package-level regexp.
func validClusterName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkClusterName(name string) error {
	if validClusterName(name) {
		return nil
	}
	shown := name
	if len(shown) > 70 {
		shown = shown[:70] + "..."
	}
	return invalidf("cluster name %q: must match %s", shown, clusterNameRule)
}

func checkKind(k Kind) error {
	if k.valid() {
		return nil
	}
	return invalidf("certificate kind %q: must be %q or %q", string(k), Syncer, Proxy)
}

// validUID accepts the canonical decimal form of a positive int.
func validUID(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && strconv.Itoa(n) == s
}

// APISecretName is the name of a cluster's API secret. It does not validate cluster.
func (s *Store) APISecretName(cluster string) string {
	return s.prefix + "clusters/" + cluster + "/api"
}

// SecretName is the name of a cluster's syncer or proxy certificate secret. It does not validate
// its arguments.
func (s *Store) SecretName(cluster string, kind Kind) string {
	return s.prefix + "clusters/" + cluster + "/" + string(kind)
}

func (s *Store) clientsSecretName(cluster string, uid int) string {
	return s.prefix + "databases/" + cluster + "/" + strconv.Itoa(uid) + "/clients"
}

func (s *Store) certSecretName(cluster string, kind Kind) (string, error) {
	if err := checkClusterName(cluster); err != nil {
		return "", err
	}
	if err := checkKind(kind); err != nil {
		return "", err
	}
	return s.SecretName(cluster, kind), nil
}

// ParseSecretName tells which cluster and which of its secrets a name or ARN designates: what is
// "api", "syncer", "proxy" or "clients". ok is false for anything outside this Store's layout.
// A full ARN ends in the name plus "-" and 6 random characters; a partial ARN (without them) works too.
func (s *Store) ParseSecretName(nameOrARN string) (cluster string, what string, ok bool) {
	name := nameOrARN
	if strings.HasPrefix(name, "arn:") {
		var isSecret bool
		if name, isSecret = secretNameFromARN(name); !isSecret {
			return "", "", false
		}
	}
	rest, ok := strings.CutPrefix(name, s.prefix)
	if !ok {
		return "", "", false
	}
	seg := strings.Split(rest, "/")
	switch {
	case len(seg) == 3 && seg[0] == "clusters" && validClusterName(seg[1]) &&
		(seg[2] == "api" || seg[2] == string(Syncer) || seg[2] == string(Proxy)):
		return seg[1], seg[2], true
	case len(seg) == 4 && seg[0] == "databases" && validClusterName(seg[1]) && validUID(seg[2]) &&
		seg[3] == "clients":
		return seg[1], "clients", true
	}
	return "", "", false
}

// secretNameFromARN returns the secret name inside a Secrets Manager secret ARN
// (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 chars>), without the random
// suffix when there is one.
func secretNameFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[1] == "" || parts[2] != "secretsmanager" ||
		parts[5] != "secret" || parts[6] == "" {
		return "", false
	}
	name := parts[6]
	if n := len(name); n > 7 && name[n-7] == '-' && isAlnum(name[n-6:]) {
		name = name[:n-7]
	}
	return name, true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// nameFromID is the secret name for a name or ARN, used as the cache key to drop.
func nameFromID(id string) string {
	if name, ok := secretNameFromARN(id); ok {
		return name
	}
	return id
}

// Invalidate drops everything cached.
func (s *Store) Invalidate() { s.cache.dropAll() }

// secretValue is what the Store keeps of a GetSecretValue answer. Shared through the cache: read only.
type secretValue struct {
	Name      string
	VersionID string
	Stages    []string
	Created   time.Time
	String    string
	HasString bool
}

// where names a value of a secret for errors: "secret <name> (stage X)" or "(version Y)".
func where(name, stage, versionID string) string {
	if versionID != "" {
		return fmt.Sprintf("secret %s (version %s)", name, versionID)
	}
	return fmt.Sprintf("secret %s (stage %s)", name, stage)
}

// value reads one version of a secret, by stage or by version id (exactly one of them set). The
// stage is always sent explicitly: moto answers a request without one with a stale AWSCURRENT.
func (s *Store) value(ctx context.Context, name, stage, versionID string) (secretValue, error) {
	op, arg := opStage, stage
	if versionID != "" {
		op, arg = opVersion, versionID
	}
	return cached(s, cacheKey{secret: name, op: op, arg: arg}, func() (secretValue, error) {
		in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}
		if versionID != "" {
			in.VersionId = aws.String(versionID)
		} else {
			in.VersionStage = aws.String(stage)
		}
		out, err := s.api.GetSecretValue(ctx, in)
		if err != nil {
			if isNotFound(err) {
				return secretValue{}, notFoundf(err, "%s: not found", where(name, stage, versionID))
			}
			return secretValue{}, fmt.Errorf("get %s: %w", where(name, stage, versionID), err)
		}
		return secretValue{
			Name:      name,
			VersionID: aws.ToString(out.VersionId),
			Stages:    out.VersionStages,
			Created:   aws.ToTime(out.CreatedDate),
			String:    aws.ToString(out.SecretString),
			HasString: out.SecretString != nil,
		}, nil
	})
}

// versionEntry is one staged version from ListSecretVersionIds.
type versionEntry struct {
	ID      string
	Stages  []string
	Created time.Time
}

// versions lists the versions of a secret that carry at least one stage.
func (s *Store) versions(ctx context.Context, name string) ([]versionEntry, error) {
	return cached(s, cacheKey{secret: name, op: opVersions}, func() ([]versionEntry, error) {
		var list []versionEntry
		p := secretsmanager.NewListSecretVersionIdsPaginator(s.api,
			&secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name)},
			func(o *secretsmanager.ListSecretVersionIdsPaginatorOptions) { o.Limit = 100 })
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, s.versionsError(ctx, name, err)
			}
			for _, v := range out.Versions {
				if len(v.VersionStages) == 0 {
					continue
				}
				list = append(list, versionEntry{ID: aws.ToString(v.VersionId), Stages: v.VersionStages, Created: aws.ToTime(v.CreatedDate)})
			}
		}
		return list, nil
	})
}

// versionsError turns a ListSecretVersionIds failure into ErrNotFound when the secret does not
// exist. moto answers an unknown secret with HTTP 500 instead of ResourceNotFoundException, so on
// any other error DescribeSecret settles whether the secret exists.
func (s *Store) versionsError(ctx context.Context, name string, err error) error {
	if isNotFound(err) {
		return notFoundf(err, "secret %s: not found", name)
	}
	if ctx.Err() == nil {
		if _, derr := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); isNotFound(derr) {
			return notFoundf(derr, "secret %s: not found", name)
		}
	}
	return fmt.Errorf("list versions of secret %s: %w", name, err)
}

// put stores body as a new version of the secret name, creating the secret when it does not exist
// yet. token is the ClientRequestToken and so the version id. stages nil means AWSCURRENT.
func (s *Store) put(ctx context.Context, name, body, token string, stages []string) (string, error) {
	// Dropped even on failure: a failed call may still have changed the secret.
	defer s.cache.drop(name)
	putIn := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(name),
		SecretString:       aws.String(body),
		ClientRequestToken: aws.String(token),
		VersionStages:      stages,
	}
	out, err := s.api.PutSecretValue(ctx, putIn)
	if err == nil {
		return aws.ToString(out.VersionId), nil
	}
	if !isNotFound(err) {
		return "", fmt.Errorf("put a new version of secret %s: %w", name, err)
	}
	created, err := s.api.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:               aws.String(name),
		SecretString:       aws.String(body),
		ClientRequestToken: aws.String(token),
	})
	if err != nil {
		var exists *types.ResourceExistsException
		if !errors.As(err, &exists) {
			return "", fmt.Errorf("create secret %s: %w", name, err)
		}
		// Created concurrently by someone else: add our version to it.
		out, err := s.api.PutSecretValue(ctx, putIn)
		if err != nil {
			return "", fmt.Errorf("put a new version of secret %s: %w", name, err)
		}
		return aws.ToString(out.VersionId), nil
	}
	versionID := aws.ToString(created.VersionId)
	if versionID == "" {
		versionID = token
	}
	// The first version of a secret is always AWSCURRENT; attach any other stage asked for.
	for _, stage := range stages {
		if stage == StageCurrent {
			continue
		}
		if err := s.moveStage(ctx, name, stage, versionID, ""); err != nil {
			return "", err
		}
	}
	return versionID, nil
}

func (s *Store) moveStage(ctx context.Context, secretID, stage, toVersion, fromVersion string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(secretID), VersionStage: aws.String(stage)}
	if toVersion != "" {
		in.MoveToVersionId = aws.String(toVersion)
	}
	if fromVersion != "" {
		in.RemoveFromVersionId = aws.String(fromVersion)
	}
	out, err := s.api.UpdateSecretVersionStage(ctx, in)
	if err != nil {
		s.cache.dropAll() // unknown what changed; rare
		if isNotFound(err) {
			return notFoundf(err, "secret %s: not found", secretID)
		}
		return fmt.Errorf("update stage %s of secret %s (to version %q, from version %q): %w", stage, secretID, toVersion, fromVersion, err)
	}
	s.cache.drop(nameFromID(secretID), aws.ToString(out.Name))
	return nil
}

// newToken returns a random ClientRequestToken in UUID v4 form (Secrets Manager wants 32-64 chars).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func checkToken(token string) error {
	if n := len(token); n < 32 || n > 64 {
		return invalidf("client request token: must be 32-64 characters, got %d", n)
	}
	return nil
}

// Description is what DescribeSecret says about a secret, for the rotation protocol.
type Description struct {
	ARN             string
	Name            string
	RotationEnabled bool
	VersionStages   map[string][]string // version id -> stages
}

// Describe reads a secret's metadata, uncached: the rotation protocol decides on it.
func (s *Store) Describe(ctx context.Context, secretID string) (Description, error) {
	if secretID == "" {
		return Description{}, invalidf("describe secret: empty secret id")
	}
	out, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		if isNotFound(err) {
			return Description{}, notFoundf(err, "secret %s: not found", secretID)
		}
		return Description{}, fmt.Errorf("describe secret %s: %w", secretID, err)
	}
	stages := make(map[string][]string, len(out.VersionIdsToStages))
	for id, st := range out.VersionIdsToStages {
		stages[id] = append([]string(nil), st...)
	}
	return Description{
		ARN:             aws.ToString(out.ARN),
		Name:            aws.ToString(out.Name),
		RotationEnabled: aws.ToBool(out.RotationEnabled),
		VersionStages:   stages,
	}, nil
}

// MoveStage attaches stage to version toVersion, removing it from fromVersion (required by Secrets
// Manager when the stage is attached elsewhere; moving AWSCURRENT moves AWSPREVIOUS to fromVersion).
func (s *Store) MoveStage(ctx context.Context, secretID, stage, toVersion, fromVersion string) error {
	if secretID == "" || stage == "" || toVersion == "" {
		return invalidf("move stage: secret id, stage and target version are required")
	}
	return s.moveStage(ctx, secretID, stage, toVersion, fromVersion)
}

// RemoveStage detaches stage from version fromVersion.
func (s *Store) RemoveStage(ctx context.Context, secretID, stage, fromVersion string) error {
	if secretID == "" || stage == "" || fromVersion == "" {
		return invalidf("remove stage: secret id, stage and version are required")
	}
	return s.moveStage(ctx, secretID, stage, "", fromVersion)
}
