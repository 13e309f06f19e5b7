package secretstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// versionSummary is what the rotation tests compare: which version carries which stages, in order.
type versionSummary struct {
	ID     string
	Stages []string
	Cert   string
	HasKey bool
}

func summarize(vs []secretstore.CertVersion) []versionSummary {
	var out []versionSummary
	for _, v := range vs {
		out = append(out, versionSummary{ID: v.VersionID, Stages: v.Stages, Cert: v.Certificate, HasKey: v.HasKey})
	}
	return out
}

var sortStrings = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestCertRotationStages(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	s := secretstore.New(client, secretstore.Options{Prefix: uniquePrefix(t)}) // default cache on
	v1 := newKeyPair(t, "east.example.com")
	v2 := newKeyPair(t, "east.example.com")

	id1, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: v1.Cert, PrivateKey: v1.Key})
	if err != nil {
		t.Fatalf("PutCert v1: %v", err)
	}
	// Read before the pending put, so a stale cache would show.
	if cur, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSCURRENT"); err != nil || cur.VersionID != id1 {
		t.Fatalf("Cert(AWSCURRENT) = %q, %v; want %q", cur.VersionID, err, id1)
	}
	id2, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: v2.Cert, PrivateKey: v2.Key, Stages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatalf("PutCert v2: %v", err)
	}
	if id1 == id2 {
		t.Fatalf("two puts returned the same version id %q", id1)
	}

	got, err := s.CertVersions(ctx, "east", secretstore.Syncer)
	if err != nil {
		t.Fatalf("CertVersions: %v", err)
	}
	want := []versionSummary{
		{ID: id2, Stages: []string{"AWSPENDING"}, Cert: v2.Cert, HasKey: true},
		{ID: id1, Stages: []string{"AWSCURRENT"}, Cert: v1.Cert, HasKey: true},
	}
	if diff := cmp.Diff(want, summarize(got), sortStrings); diff != "" {
		t.Errorf("CertVersions with a pending version (-want +got):\n%s", diff)
	}
	if !got[0].Has("AWSPENDING") || got[0].Has("AWSCURRENT") || got[0].Created.IsZero() {
		t.Errorf("pending version: Has(AWSPENDING)=%v Has(AWSCURRENT)=%v Created=%v", got[0].Has("AWSPENDING"), got[0].Has("AWSCURRENT"), got[0].Created)
	}
	if cur, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSCURRENT"); err != nil || cur.VersionID != id1 {
		t.Errorf("before the move, Cert(AWSCURRENT) = %q, %v; want %q", cur.VersionID, err, id1)
	}

	// finishSecret: AWSCURRENT moves to v2 (AWSPREVIOUS follows to v1), then AWSPENDING is removed.
	name := s.SecretName("east", secretstore.Syncer)
	if err := s.MoveStage(ctx, name, "AWSCURRENT", id2, id1); err != nil {
		t.Fatalf("MoveStage: %v", err)
	}
	if err := s.RemoveStage(ctx, name, "AWSPENDING", id2); err != nil {
		t.Fatalf("RemoveStage: %v", err)
	}

	got, err = s.CertVersions(ctx, "east", secretstore.Syncer)
	if err != nil {
		t.Fatalf("CertVersions after the move: %v", err)
	}
	want = []versionSummary{
		{ID: id2, Stages: []string{"AWSCURRENT"}, Cert: v2.Cert, HasKey: true},
		{ID: id1, Stages: []string{"AWSPREVIOUS"}, Cert: v1.Cert, HasKey: true},
	}
	if diff := cmp.Diff(want, summarize(got), sortStrings); diff != "" {
		t.Errorf("CertVersions after the move (-want +got):\n%s", diff)
	}

	// The moto bug: without a stage, GetSecretValue still answers the old version. The Store always
	// names the stage, so it sees the new current one.
	raw, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err == nil && aws.ToString(raw.VersionId) == id1 {
		t.Logf("moto still answers a GetSecretValue without stage with the stale version %s", id1)
	}
	cur, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSCURRENT")
	if err != nil {
		t.Fatalf("Cert(AWSCURRENT): %v", err)
	}
	if cur.VersionID != id2 || cur.Certificate != v2.Cert || !cur.Has("AWSCURRENT") {
		t.Errorf("Cert(AWSCURRENT) after the move = version %s stages %v, want %s", cur.VersionID, cur.Stages, id2)
	}
	prev, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSPREVIOUS")
	if err != nil || prev.VersionID != id1 {
		t.Errorf("Cert(AWSPREVIOUS) = %q, %v; want %q", prev.VersionID, err, id1)
	}
	if _, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSPENDING"); !errors.Is(err, secretstore.ErrNotFound) {
		t.Errorf("Cert(AWSPENDING) after finish: error = %v, want ErrNotFound", err)
	}

	certPEM, keyPEM, err := s.CertWithKey(ctx, "east", secretstore.Syncer, id2)
	if err != nil {
		t.Fatalf("CertWithKey: %v", err)
	}
	if certPEM != v2.Cert || keyPEM != v2.Key {
		t.Errorf("CertWithKey(%s) did not return what was put", id2)
	}

	d, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	wantStages := map[string][]string{id2: {"AWSCURRENT"}, id1: {"AWSPREVIOUS"}}
	if diff := cmp.Diff(wantStages, d.VersionStages, sortStrings); diff != "" {
		t.Errorf("Describe stages (-want +got):\n%s", diff)
	}
	if d.Name != name || d.RotationEnabled {
		t.Errorf("Describe = name %q rotation %v, want %q false", d.Name, d.RotationEnabled, name)
	}
	// The rotation event names the secret by ARN.
	cluster, what, ok := s.ParseSecretName(d.ARN)
	if !ok || cluster != "east" || what != "syncer" {
		t.Errorf("ParseSecretName(%q) = %q, %q, %v; want east, syncer, true", d.ARN, cluster, what, ok)
	}
	byARN, err := s.Describe(ctx, d.ARN)
	if err != nil || byARN.Name != name {
		t.Errorf("Describe by ARN = %q, %v; want %q", byARN.Name, err, name)
	}
}

func TestPutCertFirstVersionWithPendingStage(t *testing.T) {
	ctx := context.Background()
	api := newCounting(newClient(t))
	s := secretstore.New(api, secretstore.Options{Prefix: uniquePrefix(t)})
	kp := newKeyPair(t, "west.example.com")

	id, err := s.PutCert(ctx, "west", secretstore.Proxy, secretstore.PutCert{Certificate: kp.Cert, Stages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatalf("PutCert: %v", err)
	}
	if api.n("CreateSecret") != 1 {
		t.Errorf("CreateSecret calls = %d, want 1 for a new secret", api.n("CreateSecret"))
	}
	got, err := s.CertVersions(ctx, "west", secretstore.Proxy)
	if err != nil {
		t.Fatalf("CertVersions: %v", err)
	}
	want := []versionSummary{{ID: id, Stages: []string{"AWSCURRENT", "AWSPENDING"}, Cert: kp.Cert}}
	if diff := cmp.Diff(want, summarize(got), sortStrings); diff != "" {
		t.Errorf("first version (-want +got):\n%s", diff)
	}
}

func TestPutCertIdempotentWithToken(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		stages []string
		want   []string // stages of the token's version
	}{
		{"current", nil, []string{"AWSCURRENT"}},
		{"pending", []string{"AWSPENDING"}, []string{"AWSPENDING"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := secretstore.New(newClient(t), secretstore.Options{Prefix: uniquePrefix(t)})
			first := newKeyPair(t, "east.example.com")
			if _, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: first.Cert}); err != nil {
				t.Fatalf("first PutCert: %v", err)
			}
			kp := newKeyPair(t, "east.example.com")
			in := secretstore.PutCert{Certificate: kp.Cert, PrivateKey: kp.Key, Token: "3f1c9a52-7d4e-4b8a-9c61-0a2b3c4d5e6f", Stages: tc.stages}
			id1, err := s.PutCert(ctx, "east", secretstore.Syncer, in)
			if err != nil {
				t.Fatalf("PutCert: %v", err)
			}
			id2, err := s.PutCert(ctx, "east", secretstore.Syncer, in)
			if err != nil {
				t.Fatalf("PutCert again with the same token: %v", err)
			}
			if id1 != in.Token || id2 != in.Token {
				t.Errorf("version ids = %q, %q; want the token %q", id1, id2, in.Token)
			}
			vs, err := s.CertVersions(ctx, "east", secretstore.Syncer)
			if err != nil {
				t.Fatalf("CertVersions: %v", err)
			}
			if len(vs) != 2 {
				t.Fatalf("got %d versions after a repeated put, want 2: %+v", len(vs), summarize(vs))
			}
			if diff := cmp.Diff(versionSummary{ID: in.Token, Stages: tc.want, Cert: kp.Cert, HasKey: true}, summarize(vs)[0]); diff != "" {
				t.Errorf("the token's version (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("empty token is random", func(t *testing.T) {
		s := secretstore.New(newClient(t), secretstore.Options{Prefix: uniquePrefix(t)})
		kp := newKeyPair(t, "east.example.com")
		id1, err1 := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert})
		id2, err2 := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert})
		if err1 != nil || err2 != nil {
			t.Fatalf("PutCert: %v, %v", err1, err2)
		}
		if id1 == id2 || len(id1) < 32 {
			t.Errorf("version ids %q, %q: want two different ids of at least 32 characters", id1, id2)
		}
	})
}

func TestPutCertRejectsBadInputAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	api := newCounting(newClient(t))
	s := secretstore.New(api, secretstore.Options{Prefix: uniquePrefix(t)})
	kp := newKeyPair(t, "east.example.com")
	other := newKeyPair(t, "other.example.com")
	cases := []struct {
		name string
		in   secretstore.PutCert
		want string
	}{
		{"no certificate", secretstore.PutCert{}, "field certificate: missing"},
		{"certificate not PEM", secretstore.PutCert{Certificate: "hello"}, "field certificate: not PEM"},
		{"private key as certificate", secretstore.PutCert{Certificate: kp.Key}, "field certificate: holds a private key"},
		{"key after the certificate", secretstore.PutCert{Certificate: kp.Cert + kp.Key}, "field certificate: holds a private key"},
		{"certificate as key", secretstore.PutCert{Certificate: kp.Cert, PrivateKey: kp.Cert}, "field private_key: holds a certificate"},
		{"key of another certificate", secretstore.PutCert{Certificate: kp.Cert, PrivateKey: other.Key}, "field private_key: is not a valid private key for field certificate"},
		{"garbage key", secretstore.PutCert{Certificate: kp.Cert, PrivateKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "field private_key: is not a valid private key"},
		{"short token", secretstore.PutCert{Certificate: kp.Cert, Token: "abc"}, "client request token: must be 32-64 characters"},
		{"empty stage", secretstore.PutCert{Certificate: kp.Cert, Stages: []string{""}}, "empty version stage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := api.total()
			_, err := s.PutCert(ctx, "east", secretstore.Syncer, tc.in)
			if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PutCert error = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if msg := err.Error(); strings.Contains(msg, "BEGIN") || strings.Contains(msg, keyBody(kp.Key)) || strings.Contains(msg, keyBody(other.Key)) {
				t.Errorf("error leaks PEM material: %q", msg)
			}
			if n := api.total() - before; n != 0 {
				t.Errorf("rejected put made %d API calls, want 0", n)
			}
		})
	}
	if _, err := s.CertVersions(ctx, "east", secretstore.Syncer); !errors.Is(err, secretstore.ErrNotFound) {
		t.Errorf("after rejected puts, CertVersions error = %v, want ErrNotFound", err)
	}
}

func TestCertRejectsBadSecrets(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	s := secretstore.New(client, secretstore.Options{Prefix: uniquePrefix(t)})
	kp := newKeyPair(t, "east.example.com")
	other := newKeyPair(t, "other.example.com")
	js := func(v map[string]string) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, secret, want string
		withKeyOnly        bool // only CertWithKey checks that the key matches
	}{
		{"malformed JSON", `{"certificate": "` + kp.Cert[:40], "malformed JSON", false},
		{"certificate missing", js(map[string]string{"private_key": kp.Key}), "field certificate: missing", false},
		{"certificate is a key", js(map[string]string{"certificate": kp.Key}), "field certificate: holds a private key", false},
		{"private_key not PEM", js(map[string]string{"certificate": kp.Cert, "private_key": "hunter2"}), "field private_key: not PEM", false},
		{"private_key of another cert", js(map[string]string{"certificate": kp.Cert, "private_key": other.Key}), "field private_key: is not a valid private key for field certificate", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster := fmt.Sprintf("bad%d", i)
			createRaw(t, client, s.SecretName(cluster, secretstore.Syncer), tc.secret)
			vs, listErr := s.CertVersions(ctx, cluster, secretstore.Syncer)
			var errs []error
			if tc.withKeyOnly {
				if listErr != nil || len(vs) != 1 {
					t.Fatalf("CertVersions = %d versions, %v; want 1, nil", len(vs), listErr)
				}
				_, _, err := s.CertWithKey(ctx, cluster, secretstore.Syncer, vs[0].VersionID)
				errs = append(errs, err)
			} else {
				_, err := s.Cert(ctx, cluster, secretstore.Syncer, "AWSCURRENT")
				errs = append(errs, listErr, err)
			}
			for _, err := range errs {
				if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.want)
				}
				if msg := err.Error(); strings.Contains(msg, "BEGIN") || strings.Contains(msg, "hunter2") || strings.Contains(msg, keyBody(kp.Key)) || strings.Contains(msg, keyBody(other.Key)) {
					t.Errorf("error leaks secret material: %q", msg)
				}
			}
		})
	}

	t.Run("CertWithKey on a version without key", func(t *testing.T) {
		id, err := s.PutCert(ctx, "nokey", secretstore.Proxy, secretstore.PutCert{Certificate: kp.Cert})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.CertWithKey(ctx, "nokey", secretstore.Proxy, id)
		if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), "field private_key: missing") {
			t.Errorf("error = %v, want ErrInvalid saying the key is missing", err)
		}
	})
}

func TestUnknownSecrets(t *testing.T) {
	ctx := context.Background()
	s := secretstore.New(newClient(t), secretstore.Options{Prefix: uniquePrefix(t)})
	kp := newKeyPair(t, "east.example.com")
	id, err := s.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: kp.Cert, PrivateKey: kp.Key})
	if err != nil {
		t.Fatal(err)
	}
	unknownVersion := "00000000-0000-4000-8000-000000000000"
	cases := []struct {
		name string
		call func() error
	}{
		{"ClusterAPI of an unregistered cluster", func() error { _, err := s.ClusterAPI(ctx, "nobody"); return err }},
		{"Cert of an unknown cluster", func() error { _, err := s.Cert(ctx, "nobody", secretstore.Syncer, "AWSCURRENT"); return err }},
		{"Cert with a stage no version has", func() error { _, err := s.Cert(ctx, "east", secretstore.Syncer, "AWSPENDING"); return err }},
		{"CertVersions of an unknown secret", func() error { _, err := s.CertVersions(ctx, "east", secretstore.Proxy); return err }},
		{"CertWithKey of an unknown version", func() error { _, _, err := s.CertWithKey(ctx, "east", secretstore.Syncer, unknownVersion); return err }},
		{"Describe", func() error { _, err := s.Describe(ctx, s.SecretName("nobody", secretstore.Proxy)); return err }},
		{"MoveStage", func() error {
			return s.MoveStage(ctx, s.SecretName("nobody", secretstore.Proxy), "AWSCURRENT", id, unknownVersion)
		}},
		{"RemoveStage", func() error { return s.RemoveStage(ctx, s.SecretName("nobody", secretstore.Proxy), "AWSPENDING", id) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, secretstore.ErrNotFound) {
				t.Fatalf("error = %v, want ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "secret ") {
				t.Errorf("error %q does not name the secret", err)
			}
		})
	}

	t.Run("ClientCerts of a database without secret", func(t *testing.T) {
		got, err := s.ClientCerts(ctx, "east", 7)
		if err != nil || got != nil {
			t.Errorf("ClientCerts = %v, %v; want nil, nil", got, err)
		}
	})
}

func TestClientCerts(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	s := secretstore.New(client, secretstore.Options{Prefix: uniquePrefix(t)})
	a := newKeyPair(t, "client-a")
	b := newKeyPair(t, "client-b")
	dbSecret := func(uid int) string {
		// Built from the documented layout rather than the Store, to pin it.
		d, _, _ := strings.Cut(s.APISecretName("east"), "clusters/")
		return d + "databases/east/" + fmt.Sprint(uid) + "/clients"
	}
	createRaw(t, client, dbSecret(1), `{"certificates": [`+quote(t, a.Cert)+`, `+quote(t, b.Cert)+`]}`)
	createRaw(t, client, dbSecret(2), `{"certificates": []}`)
	createRaw(t, client, dbSecret(3), `{"certs": []}`)
	createRaw(t, client, dbSecret(4), `{"certificates": [`+quote(t, a.Cert)+`, `+quote(t, a.Key)+`]}`)
	createRaw(t, client, dbSecret(5), `{"certificates": "`+marker+`"}`)

	cases := []struct {
		name    string
		uid     int
		want    []string
		wantErr string // ErrInvalid saying this
	}{
		{"two certificates", 1, []string{a.Cert, b.Cert}, ""},
		{"empty list", 2, []string{}, ""},
		{"field missing", 3, nil, "field certificates: missing"},
		{"a key in the list", 4, nil, "field certificates[1]: holds a private key"},
		{"not a list", 5, nil, "field certificates: must be a JSON array"},
		{"uid zero", 0, nil, "database uid 0: must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ClientCerts(ctx, "east", tc.uid)
			if tc.wantErr != "" {
				if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want ErrInvalid saying %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), keyBody(a.Key)) {
					t.Errorf("error leaks secret material: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ClientCerts: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ClientCerts (-want +got):\n%s", diff)
			}
		})
	}
}

func quote(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startedRotation plays Secrets Manager between RotateSecret and the rotation function's createSecret:
// the token's version carries AWSPENDING but has no value yet (moto cannot hold such a version).
type startedRotation struct {
	secretstore.API
	secret, token string
}

func (r startedRotation) ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, o ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	out, err := r.API.ListSecretVersionIds(ctx, in, o...)
	if err == nil && aws.ToString(in.SecretId) == r.secret {
		out.Versions = append(out.Versions, smtypes.SecretVersionsListEntry{VersionId: aws.String(r.token), VersionStages: []string{"AWSPENDING"}})
	}
	return out, err
}

func (r startedRotation) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if aws.ToString(in.VersionId) == r.token {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret value for VersionId")}
	}
	return r.API.GetSecretValue(ctx, in, o...)
}

func TestCertVersionsDuringARotationThatHasNotStoredItsValue(t *testing.T) {
	ctx := context.Background()
	prefix := uniquePrefix(t)
	plain := secretstore.New(newClient(t), secretstore.Options{Prefix: prefix, CacheTTL: -1})
	v1 := newKeyPair(t, "east.example.com")
	id1, err := plain.PutCert(ctx, "east", secretstore.Syncer, secretstore.PutCert{Certificate: v1.Cert, PrivateKey: v1.Key})
	if err != nil {
		t.Fatal(err)
	}
	api := startedRotation{API: newClient(t), secret: prefix + "clusters/east/syncer", token: "00000000-0000-4000-8000-000000000001"}
	s := secretstore.New(api, secretstore.Options{Prefix: prefix, CacheTTL: -1})
	got, err := s.CertVersions(ctx, "east", secretstore.Syncer)
	if err != nil {
		t.Fatalf("CertVersions while a rotation is starting: %v", err)
	}
	if len(got) != 1 || got[0].VersionID != id1 || !got[0].Has("AWSCURRENT") {
		t.Fatalf("want only the current version, got %+v", got)
	}
}

func TestDBPolicyRoundTripAndValidation(t *testing.T) {
	ctx := context.Background()
	s := secretstore.New(newClient(t), secretstore.Options{Prefix: uniquePrefix(t), CacheTTL: -1})
	if _, ok, err := s.DBPolicy(ctx, "east", 1); err != nil || ok {
		t.Fatalf("no policy stored yet: ok=%v err=%v", ok, err)
	}
	want := secretstore.DBPolicy{TLSScope: "all", ClientAuthentication: false}
	if changed, err := s.PutDBPolicy(ctx, "east", 1, want); err != nil || !changed {
		t.Fatalf("first put: changed=%v err=%v", changed, err)
	}
	if changed, err := s.PutDBPolicy(ctx, "east", 1, want); err != nil || changed {
		t.Fatalf("the same policy again must change nothing: changed=%v err=%v", changed, err)
	}
	got, ok, err := s.DBPolicy(ctx, "east", 1)
	if err != nil || !ok || got != want {
		t.Fatalf("DBPolicy = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	for _, bad := range []secretstore.DBPolicy{{TLSScope: "everything"}, {TLSScope: ""}} {
		if _, err := s.PutDBPolicy(ctx, "east", 2, bad); !errors.Is(err, secretstore.ErrInvalid) {
			t.Errorf("PutDBPolicy(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := s.DBPolicy(ctx, "East!", 1); !errors.Is(err, secretstore.ErrInvalid) {
		t.Errorf("bad cluster name: %v", err)
	}
}
