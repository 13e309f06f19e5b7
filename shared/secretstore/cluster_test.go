package secretstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

const marker = "hunter2-SECRET-marker" // a password; must never appear in a message

func TestClusterAPIRoundTrip(t *testing.T) {
	ctx := context.Background()
	api := newCounting(newClient(t))
	s := secretstore.New(api, secretstore.Options{Prefix: uniquePrefix(t)})
	ca := newKeyPair(t, "east.example.com")

	want := secretstore.ClusterAPI{Name: "east", URL: "https://east.example.com:9443", Username: "admin@example.com", Password: marker, CACert: ca.Cert,
		ReplicationHosts: []secretstore.ReplicationHost{{Host: "east-ingress.apps.example.org"}, {Host: "orders.apps.example.org", DB: 1}}}
	if err := s.PutClusterAPI(ctx, want); err != nil {
		t.Fatalf("PutClusterAPI: %v", err)
	}
	got, err := s.ClusterAPI(ctx, "east")
	if err != nil {
		t.Fatalf("ClusterAPI: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClusterAPI after first put (-want +got):\n%s", diff)
	}

	// A second put is a new AWSCURRENT version, and the cached first one is dropped.
	want.Password = marker + "-2"
	if err := s.PutClusterAPI(ctx, want); err != nil {
		t.Fatalf("second PutClusterAPI: %v", err)
	}
	got, err = s.ClusterAPI(ctx, "east")
	if err != nil {
		t.Fatalf("ClusterAPI: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClusterAPI after second put (-want +got):\n%s", diff)
	}
	if n := api.n("GetSecretValue"); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2 (one per read after each put)", n)
	}

	d, err := s.Describe(ctx, s.APISecretName("east"))
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	var stages []string
	for _, st := range d.VersionStages {
		stages = append(stages, st...)
	}
	slices.Sort(stages)
	if diff := cmp.Diff([]string{"AWSCURRENT", "AWSPREVIOUS"}, stages); diff != "" {
		t.Errorf("stages after two puts (-want +got):\n%s", diff)
	}
}

func TestClusterNamesPaginates(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	api := newCounting(client)
	api.pageSize = 2
	prefix := uniquePrefix(t)
	s := secretstore.New(api, secretstore.Options{Prefix: prefix})
	ca := newKeyPair(t, "ca.example.com")

	clusters := []string{"west", "east", "a", "north-2", "south", "0zone", "central"}
	for _, name := range clusters {
		if err := s.PutClusterAPI(ctx, secretstore.ClusterAPI{Name: name, URL: "https://" + name + ".example.com", Username: "u", Password: marker, CACert: ca.Cert}); err != nil {
			t.Fatalf("PutClusterAPI %s: %v", name, err)
		}
	}
	// Under the prefix but not registered clusters, and a registered cluster under another prefix.
	noise := []string{prefix + "clusters/west/syncer", prefix + "clusters/Bad_Name/api", prefix + "clusters/a/b/api", uniquePrefix(t) + "clusters/other/api"}
	for _, name := range noise {
		createRaw(t, client, name, `{}`)
	}
	matching := len(clusters) + 3 // what moto's prefix filter returns

	want := slices.Sorted(slices.Values(clusters))
	got, err := s.ClusterNames(ctx)
	if err != nil {
		t.Fatalf("ClusterNames: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClusterNames (-want +got):\n%s", diff)
	}
	pages := api.n("ListSecrets")
	if minPages := (matching + 1) / 2; pages < minPages {
		t.Errorf("ListSecrets calls = %d, want >= %d pages of 2", pages, minPages)
	}

	if _, err := s.ClusterNames(ctx); err != nil {
		t.Fatalf("ClusterNames again: %v", err)
	}
	if n := api.n("ListSecrets"); n != pages {
		t.Errorf("second ClusterNames made %d ListSecrets calls, want 0 (cached)", n-pages)
	}

	// Registering a cluster drops the cached list.
	if err := s.PutClusterAPI(ctx, secretstore.ClusterAPI{Name: "new", URL: "https://new.example.com", Username: "u", Password: marker, CACert: ca.Cert}); err != nil {
		t.Fatalf("PutClusterAPI new: %v", err)
	}
	got, err = s.ClusterNames(ctx)
	if err != nil {
		t.Fatalf("ClusterNames after put: %v", err)
	}
	if !slices.Contains(got, "new") || len(got) != len(clusters)+1 {
		t.Errorf("ClusterNames after registering %q = %v", "new", got)
	}
}

func TestClusterAPIRejectsBadSecrets(t *testing.T) {
	ctx := context.Background()
	client := newClient(t)
	prefix := uniquePrefix(t)
	s := secretstore.New(client, secretstore.Options{Prefix: prefix})
	ca := newKeyPair(t, "ca.example.com")
	ok := map[string]any{"url": "https://h.example.com", "username": "admin", "password": marker, "ca_cert": ca.Cert}
	with := func(k string, v any) string {
		m := map[string]any{}
		for key, val := range ok {
			if key != k {
				m[key] = val
			}
		}
		if v != nil {
			m[k] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, secret, want string
	}{
		{"truncated JSON", `{"url":"https://h","password":"` + marker + `"`, "malformed JSON"},
		{"bad JSON character", `{"password": ` + marker + `}`, "malformed JSON at byte"},
		{"JSON string, not object", `"` + marker + `"`, "must be a JSON object"},
		{"url not a string", with("url", 5), "field url: must be a JSON string"},
		{"url missing", with("url", nil), "field url: missing"},
		{"http url", with("url", "http://h.example.com:9443"), "field url: must be https"},
		{"url with credentials", with("url", "https://admin:"+marker+"@h.example.com"), "field url: must not hold credentials"},
		{"url without host", with("url", "https:///v1"), "field url: missing host"},
		{"username missing", with("username", nil), "field username: missing"},
		{"password missing", with("password", ""), "field password: missing"},
		{"ca_cert missing", with("ca_cert", nil), "field ca_cert: missing"},
		{"ca_cert not PEM", with("ca_cert", marker), "field ca_cert: not PEM"},
		{"ca_cert is a private key", with("ca_cert", ca.Key), "field ca_cert: holds a private key"},
		{"ca_cert with trailing junk", with("ca_cert", ca.Cert+marker), "field ca_cert: trailing data"},
		{"replication host with a scheme", with("replication_hosts", map[string]int{"https://r.example.org": 1}), "field replication_hosts: \"https://r.example.org\" is not a host name"},
		{"replication host with a port", with("replication_hosts", map[string]int{"r.example.org:443": 0}), "is not a host name"},
		{"replication host negative uid", with("replication_hosts", map[string]int{"r.example.org": -1}), "database uid -1 is negative"},
		{"replication host twice", with("replication_hosts", map[string]int{"R.example.org": 1, "r.example.org.": 2}), "r.example.org is listed twice"},
		{"replication hosts not a map", with("replication_hosts", []string{"r.example.org"}), "field replication_hosts"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster := fmt.Sprintf("c%d", i)
			createRaw(t, client, s.APISecretName(cluster), tc.secret)
			_, err := s.ClusterAPI(ctx, cluster)
			if !errors.Is(err, secretstore.ErrInvalid) {
				t.Fatalf("ClusterAPI error = %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, s.APISecretName(cluster)) {
				t.Errorf("error %q does not name the secret and say %q", msg, tc.want)
			}
			if strings.Contains(msg, marker) || strings.Contains(msg, keyBody(ca.Key)) {
				t.Errorf("error leaks secret material: %q", msg)
			}
		})
	}

	t.Run("exact message for an http url", func(t *testing.T) {
		_, err := s.ClusterAPI(ctx, "c5")
		want := "secret " + prefix + "clusters/c5/api: field url: must be https"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})

	t.Run("binary secret", func(t *testing.T) {
		if _, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.APISecretName("bin")), SecretBinary: []byte(marker)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.ClusterAPI(ctx, "bin")
		if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), "not a JSON string secret") {
			t.Errorf("error = %v, want ErrInvalid saying not a JSON string secret", err)
		}
	})
}

func TestPutClusterAPIRejectsBadInputAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	api := newCounting(newClient(t))
	s := secretstore.New(api, secretstore.Options{Prefix: uniquePrefix(t)})
	ca := newKeyPair(t, "ca.example.com")
	good := secretstore.ClusterAPI{Name: "east", URL: "https://east.example.com", Username: "admin", Password: marker, CACert: ca.Cert}
	cases := []struct {
		name   string
		change func(*secretstore.ClusterAPI)
		want   string
	}{
		{"bad cluster name", func(c *secretstore.ClusterAPI) { c.Name = "East_1" }, "cluster name"},
		{"http url", func(c *secretstore.ClusterAPI) { c.URL = "http://east.example.com" }, "field url: must be https"},
		{"url with password", func(c *secretstore.ClusterAPI) { c.URL = "https://admin:" + marker + "@east.example.com" }, "field url: must not hold credentials"},
		{"no password", func(c *secretstore.ClusterAPI) { c.Password = "" }, "field password: missing"},
		{"no username", func(c *secretstore.ClusterAPI) { c.Username = "" }, "field username: missing"},
		{"key as ca_cert", func(c *secretstore.ClusterAPI) { c.CACert = ca.Key }, "field ca_cert: holds a private key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			before := api.total()
			err := s.PutClusterAPI(ctx, c)
			if !errors.Is(err, secretstore.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PutClusterAPI error = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), keyBody(ca.Key)) {
				t.Errorf("error leaks secret material: %q", err)
			}
			if n := api.total() - before; n != 0 {
				t.Errorf("rejected put made %d API calls, want 0", n)
			}
		})
	}
	if _, err := s.Describe(ctx, s.APISecretName("east")); !errors.Is(err, secretstore.ErrNotFound) {
		t.Errorf("after rejected puts, Describe error = %v, want ErrNotFound", err)
	}
}

func TestClusterAPIRedaction(t *testing.T) {
	ca := newKeyPair(t, "ca.example.com")
	c := secretstore.ClusterAPI{Name: "east", URL: "https://admin:urlpass-SECRET@east.example.com:9443", Username: "admin", Password: "hunter2-SECRET", CACert: ca.Cert}
	var jsonLog, textLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("cluster", "api", c)
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("cluster", "api", c)
	marshalled, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":      c.String(),
		"%v":          fmt.Sprintf("%v", c),
		"%+v":         fmt.Sprintf("%+v", c),
		"%#v":         fmt.Sprintf("%#v", c),
		"%+v nested":  fmt.Sprintf("%+v", struct{ API secretstore.ClusterAPI }{c}),
		"%v pointer":  fmt.Sprintf("%v", &c),
		"slog JSON":   jsonLog.String(),
		"slog text":   textLog.String(),
		"json":        string(marshalled),
		"LogValue":    c.LogValue().String(),
		"%v of slice": fmt.Sprintf("%v", []secretstore.ClusterAPI{c}),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, "SECRET") {
				t.Errorf("output leaks the password: %s", out)
			}
			if strings.Contains(out, "BEGIN CERTIFICATE") {
				t.Errorf("output prints the CA certificate body: %s", out)
			}
			if !strings.Contains(out, "east") {
				t.Errorf("output does not name the cluster: %s", out)
			}
			if !strings.Contains(out, "sha256:") {
				t.Errorf("output does not name the CA certificate by fingerprint: %s", out)
			}
		})
	}
}
