package secretstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

func TestSecretNames(t *testing.T) {
	cases := []struct {
		prefix                  string
		wantAPI, wantSyncer     string
		wantProxyOfOtherCluster string
	}{
		{"", "replica-tls/clusters/east/api", "replica-tls/clusters/east/syncer", "replica-tls/clusters/west-2/proxy"},
		{"acme/rt/", "acme/rt/clusters/east/api", "acme/rt/clusters/east/syncer", "acme/rt/clusters/west-2/proxy"},
		{"acme/rt", "acme/rt/clusters/east/api", "acme/rt/clusters/east/syncer", "acme/rt/clusters/west-2/proxy"},
	}
	for _, tc := range cases {
		t.Run("prefix "+tc.prefix, func(t *testing.T) {
			s := secretstore.New(nil, secretstore.Options{Prefix: tc.prefix})
			if got := s.APISecretName("east"); got != tc.wantAPI {
				t.Errorf("APISecretName = %q, want %q", got, tc.wantAPI)
			}
			if got := s.SecretName("east", secretstore.Syncer); got != tc.wantSyncer {
				t.Errorf("SecretName(syncer) = %q, want %q", got, tc.wantSyncer)
			}
			if got := s.SecretName("west-2", secretstore.Proxy); got != tc.wantProxyOfOtherCluster {
				t.Errorf("SecretName(proxy) = %q, want %q", got, tc.wantProxyOfOtherCluster)
			}
		})
	}
}

func TestParseSecretName(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	long := strings.Repeat("a", 63)
	cases := []struct {
		name, in    string
		prefix      string
		wantCluster string
		wantWhat    string
		wantOK      bool
	}{
		{"api by name", "replica-tls/clusters/east/api", "", "east", "api", true},
		{"syncer by name", "replica-tls/clusters/east/syncer", "", "east", "syncer", true},
		{"proxy by name", "replica-tls/clusters/west-2/proxy", "", "west-2", "proxy", true},
		{"clients by name", "replica-tls/databases/east/12/clients", "", "east", "clients", true},
		{"syncer by ARN", arn + "replica-tls/clusters/east/syncer-AbC123", "", "east", "syncer", true},
		{"api by ARN", arn + "replica-tls/clusters/east/api-x9Y8z7", "", "east", "api", true},
		{"clients by ARN", arn + "replica-tls/databases/east/3/clients-Qw3rTy", "", "east", "clients", true},
		{"China partition ARN", "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:replica-tls/clusters/east/proxy-AbC123", "", "east", "proxy", true},
		{"partial ARN without suffix", arn + "replica-tls/clusters/east/proxy", "", "east", "proxy", true},
		{"longest cluster name", "replica-tls/clusters/" + long + "/api", "", long, "api", true},
		{"one-character cluster name", "replica-tls/clusters/0/api", "", "0", "api", true},
		{"custom prefix", "acme/rt/clusters/east/api", "acme/rt/", "east", "api", true},
		{"custom prefix given without slash", arn + "acme/rt/clusters/east/syncer-AbC123", "acme/rt", "east", "syncer", true},

		{"default name under a custom prefix", "replica-tls/clusters/east/api", "acme/rt/", "", "", false},
		{"other prefix", "other/clusters/east/api", "", "", "", false},
		{"prefix only", "replica-tls/", "", "", "", false},
		{"unknown kind", "replica-tls/clusters/east/admin", "", "", "", false},
		{"cluster name too long", "replica-tls/clusters/" + long + "a/api", "", "", "", false},
		{"upper-case cluster", "replica-tls/clusters/East/api", "", "", "", false},
		{"cluster starting with a dash", "replica-tls/clusters/-east/api", "", "", "", false},
		{"extra segment", "replica-tls/clusters/east/api/x", "", "", "", false},
		{"missing cluster", "replica-tls/clusters//api", "", "", "", false},
		{"uid not a number", "replica-tls/databases/east/x/clients", "", "", "", false},
		{"uid zero", "replica-tls/databases/east/0/clients", "", "", "", false},
		{"uid with leading zero", "replica-tls/databases/east/012/clients", "", "", "", false},
		{"clients without uid", "replica-tls/databases/east/clients", "", "", "", false},
		{"ARN of another service", "arn:aws:ssm:us-east-1:123456789012:parameter/replica-tls/clusters/east/api", "", "", "", false},
		{"ARN with a random suffix of wrong length", arn + "replica-tls/clusters/east/api-AbC12", "", "", "", false},
		{"ARN with the wrong resource type", "arn:aws:secretsmanager:us-east-1:123456789012:key:replica-tls/clusters/east/api-AbC123", "", "", "", false},
		{"truncated ARN", "arn:aws:secretsmanager:us-east-1", "", "", "", false},
		{"empty", "", "", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := secretstore.New(nil, secretstore.Options{Prefix: tc.prefix})
			cluster, what, ok := s.ParseSecretName(tc.in)
			if cluster != tc.wantCluster || what != tc.wantWhat || ok != tc.wantOK {
				t.Errorf("ParseSecretName(%q) = %q, %q, %v; want %q, %q, %v", tc.in, cluster, what, ok, tc.wantCluster, tc.wantWhat, tc.wantOK)
			}
		})
	}
}

// noCallsAPI fails the test on any call: bad arguments must be rejected before any I/O.
type noCallsAPI struct{ t *testing.T }

func (n noCallsAPI) fail(op string) error {
	n.t.Helper()
	n.t.Errorf("unexpected %s call", op)
	return errors.New("unexpected call")
}

func (n noCallsAPI) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return nil, n.fail("GetSecretValue")
}

func (n noCallsAPI) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return nil, n.fail("PutSecretValue")
}

func (n noCallsAPI) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return nil, n.fail("TagResource")
}

func (n noCallsAPI) CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return nil, n.fail("CreateSecret")
}

func (n noCallsAPI) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return nil, n.fail("DescribeSecret")
}

func (n noCallsAPI) ListSecrets(context.Context, *secretsmanager.ListSecretsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	return nil, n.fail("ListSecrets")
}

func (n noCallsAPI) ListSecretVersionIds(context.Context, *secretsmanager.ListSecretVersionIdsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	return nil, n.fail("ListSecretVersionIds")
}

func (n noCallsAPI) UpdateSecretVersionStage(context.Context, *secretsmanager.UpdateSecretVersionStageInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	return nil, n.fail("UpdateSecretVersionStage")
}

func TestBadArgumentsRejectedBeforeAnyCall(t *testing.T) {
	ctx := context.Background()
	kp := newKeyPair(t, "east.example.com")
	good := secretstore.ClusterAPI{URL: "https://e.example.com", Username: "u", Password: "p", CACert: kp.Cert}
	type call func(s *secretstore.Store, cluster string) error
	calls := map[string]call{
		"ClusterAPI": func(s *secretstore.Store, c string) error { _, err := s.ClusterAPI(ctx, c); return err },
		"PutClusterAPI": func(s *secretstore.Store, c string) error {
			api := good
			api.Name = c
			return s.PutClusterAPI(ctx, api)
		},
		"Cert": func(s *secretstore.Store, c string) error {
			_, err := s.Cert(ctx, c, secretstore.Syncer, "AWSCURRENT")
			return err
		},
		"CertVersions": func(s *secretstore.Store, c string) error {
			_, err := s.CertVersions(ctx, c, secretstore.Proxy)
			return err
		},
		"CertWithKey": func(s *secretstore.Store, c string) error {
			_, _, err := s.CertWithKey(ctx, c, secretstore.Syncer, "v1")
			return err
		},
		"PutCert": func(s *secretstore.Store, c string) error {
			_, err := s.PutCert(ctx, c, secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert})
			return err
		},
		"ClientCerts": func(s *secretstore.Store, c string) error { _, err := s.ClientCerts(ctx, c, 1); return err },
	}
	badNames := []string{"", "East", "east_1", "-east", "east.example.com", "a/b", "east ", "ést", strings.Repeat("a", 64)}
	for op, fn := range calls {
		for _, name := range badNames {
			t.Run(op+"/"+name, func(t *testing.T) {
				s := secretstore.New(noCallsAPI{t}, secretstore.Options{})
				err := fn(s, name)
				if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), "cluster name") {
					t.Errorf("error = %v, want ErrInvalid about the cluster name", err)
				}
			})
		}
	}

	others := []struct {
		name string
		call func(s *secretstore.Store) error
		want string
	}{
		{"unknown kind", func(s *secretstore.Store) error {
			_, err := s.Cert(ctx, "east", secretstore.Kind("admin"), "AWSCURRENT")
			return err
		}, `certificate kind "admin"`},
		{"empty stage", func(s *secretstore.Store) error { _, err := s.Cert(ctx, "east", secretstore.Syncer, ""); return err }, "a version stage is required"},
		{"empty version id", func(s *secretstore.Store) error {
			_, _, err := s.CertWithKey(ctx, "east", secretstore.Syncer, "")
			return err
		}, "a version id is required"},
		{"negative uid", func(s *secretstore.Store) error { _, err := s.ClientCerts(ctx, "east", -3); return err }, "database uid -3"},
		{"token too long", func(s *secretstore.Store) error {
			_, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert, Token: strings.Repeat("t", 65)})
			return err
		}, "must be 32-64 characters, got 65"},
		{"MoveStage without target", func(s *secretstore.Store) error { return s.MoveStage(ctx, "x", "AWSCURRENT", "", "v1") }, "move stage"},
		{"RemoveStage without version", func(s *secretstore.Store) error { return s.RemoveStage(ctx, "x", "AWSPENDING", "") }, "remove stage"},
		{"Describe without id", func(s *secretstore.Store) error { _, err := s.Describe(ctx, ""); return err }, "empty secret id"},
	}
	for _, tc := range others {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(secretstore.New(noCallsAPI{t}, secretstore.Options{}))
			if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}
