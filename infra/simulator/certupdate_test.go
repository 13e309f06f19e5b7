package simulator

import (
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
)

type tCluster struct {
	Name              string `json:"name"`
	ProxyCertificate  string `json:"proxy_certificate"`
	SyncerCertificate string `json:"syncer_certificate"`
}

func TestGetCluster(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	c := adminClient(t, east)
	var got tCluster
	c.want(200, "GET", "/v1/cluster", nil, &got)
	syncer, _ := east.SyncerCert()
	proxy, _ := east.ProxyCert()
	if diff := cmp.Diff(tCluster{Name: "east.redis.local", ProxyCertificate: proxy, SyncerCertificate: syncer}, got); diff != "" {
		t.Errorf("GET /v1/cluster (-want +got):\n%s", diff)
	}
	var raw map[string]any
	c.want(200, "GET", "/v1/cluster", nil, &raw)
	for _, k := range []string{"proxy_key", "syncer_key", "api_key"} {
		if _, ok := raw[k]; ok {
			t.Errorf("GET /v1/cluster carries %s", k)
		}
	}
	// The generated certificates have the profile of the real ones.
	for kind, p := range map[certs.Kind]string{certs.KindSyncer: syncer, certs.KindProxy: proxy} {
		cert, err := certs.ParseOne(p)
		if err != nil {
			t.Fatal(err)
		}
		prof, err := certs.ProfileOf(cert)
		if err != nil {
			t.Fatal(err)
		}
		if prof.Kind != kind || prof.FQDN != "east.redis.local" || prof.KeyType != certs.ECDSAP256 {
			t.Errorf("%s certificate profile %+v", kind, prof)
		}
	}
}

func TestGetCertificatesReturnsKeys(t *testing.T) {
	_, east, _ := startDemo(t, Options{})
	var got map[string]string
	adminClient(t, east).want(200, "GET", "/v1/cluster/certificates", nil, &got)
	syncer, syncerKey := east.SyncerCert()
	proxy, proxyKey := east.ProxyCert()
	want := map[string]string{"syncer_cert": syncer, "syncer_key": syncerKey, "proxy_cert": proxy, "proxy_key": proxyKey,
		"api_cert": east.APICertPEM}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s does not match the cluster's", k)
		}
	}
	if err := certs.CheckKeyPair(got["api_cert"], got["api_key"]); err != nil {
		t.Errorf("api_key: %v", err)
	}
}

func TestCertificateUpdates(t *testing.T) {
	fresh := freshCert(t, "east.redis.local")
	other := freshCert(t, "other.redis.local")
	expired := expiredCert(t, "east.redis.local")
	one := func(name, cert, key string) map[string]string {
		return map[string]string{"name": name, "certificate": cert, "key": key}
	}
	many := func(entries ...map[string]string) map[string]any { return map[string]any{"certificates": entries} }
	tests := []struct {
		name     string
		path     string
		legacy   bool
		body     any
		want     int
		wantCode string
		changed  string // which certificate must now be fresh: "syncer", "proxy" or ""
	}{
		{"update_cert syncer", "/v1/cluster/update_cert", false, one("syncer", fresh.CertPEM, fresh.KeyPEM), 200, "", "syncer"},
		{"update_cert proxy", "/v1/cluster/update_cert", false, one("proxy", fresh.CertPEM, fresh.KeyPEM), 200, "", "proxy"},
		{"update_cert on a legacy cluster", "/v1/cluster/update_cert", true, one("syncer", fresh.CertPEM, fresh.KeyPEM), 200, "", "syncer"},
		{"update_cert unknown name", "/v1/cluster/update_cert", false, one("cm", fresh.CertPEM, fresh.KeyPEM), 403, "invalid_certificate_name", ""},
		{"update_cert garbage cert", "/v1/cluster/update_cert", false, one("syncer", "garbage", fresh.KeyPEM), 400, "invalid_certificate", ""},
		{"update_cert key as cert", "/v1/cluster/update_cert", false, one("syncer", fresh.KeyPEM, fresh.KeyPEM), 400, "invalid_certificate", ""},
		{"update_cert CSR as cert", "/v1/cluster/update_cert", false, one("syncer", csrPEM(t), fresh.KeyPEM), 400, "invalid_certificate", ""},
		{"update_cert expired", "/v1/cluster/update_cert", false, one("syncer", expired.CertPEM, expired.KeyPEM), 406, "certificate_expired", ""},
		{"update_cert key of another cert", "/v1/cluster/update_cert", false, one("syncer", fresh.CertPEM, other.KeyPEM), 400, "invalid_key", ""},
		{"update_cert cert as key", "/v1/cluster/update_cert", false, one("syncer", fresh.CertPEM, fresh.CertPEM), 400, "invalid_key", ""},
		{"update_cert missing key", "/v1/cluster/update_cert", false, map[string]string{"name": "syncer", "certificate": fresh.CertPEM}, 400, "invalid_schema", ""},
		{"update_cert unknown field", "/v1/cluster/update_cert", false, map[string]string{"name": "syncer", "certificate": fresh.CertPEM, "key": fresh.KeyPEM, "cert": "x"}, 400, "invalid_schema", ""},
		{"update_cert invalid JSON", "/v1/cluster/update_cert", false, `{"name":`, 400, "invalid_schema", ""},
		{"certificates syncer", "/v1/cluster/certificates", false, many(one("syncer", fresh.CertPEM, fresh.KeyPEM)), 200, "", "syncer"},
		{"certificates on a legacy cluster", "/v1/cluster/certificates", true, many(one("syncer", fresh.CertPEM, fresh.KeyPEM)), 404, "not_found", ""},
		{"certificates one bad entry changes none", "/v1/cluster/certificates", false,
			many(one("syncer", fresh.CertPEM, fresh.KeyPEM), one("proxy", fresh.CertPEM, other.KeyPEM)), 400, "invalid_key", ""},
		{"certificates one expired entry changes none", "/v1/cluster/certificates", false,
			many(one("proxy", fresh.CertPEM, fresh.KeyPEM), one("syncer", expired.CertPEM, expired.KeyPEM)), 406, "certificate_expired", ""},
		{"certificates unknown name", "/v1/cluster/certificates", false, many(one("ldap_client", fresh.CertPEM, fresh.KeyPEM)), 403, "invalid_certificate_name", ""},
		{"certificates the same name twice", "/v1/cluster/certificates", false,
			many(one("syncer", fresh.CertPEM, fresh.KeyPEM), one("syncer", other.CertPEM, other.KeyPEM)), 400, "invalid_schema", ""},
		{"certificates empty list", "/v1/cluster/certificates", false, many(), 400, "invalid_schema", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, east, _ := startDemo(t, Options{})
			east.SetLegacyCertAPI(tt.legacy)
			before := stateOf(t, s)
			status, b := adminClient(t, east).do("PUT", tt.path, tt.body)
			if status != tt.want {
				t.Fatalf("status %d, want %d; body %s", status, tt.want, b)
			}
			if tt.wantCode != "" {
				var e apiErr
				if err := json.Unmarshal(b, &e); err != nil || e.Code != tt.wantCode {
					t.Fatalf("body %s, want error_code %s", b, tt.wantCode)
				}
			}
			if strings.Contains(string(b), "-----BEGIN") || strings.Contains(string(b), fresh.KeyPEM[40:80]) {
				t.Errorf("response quotes PEM material: %s", b)
			}
			after := stateOf(t, s)
			switch tt.changed {
			case "":
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a rejected update changed state (-before +after):\n%s", diff)
				}
			case "syncer", "proxy":
				got := after.Syncer["east"]
				if tt.changed == "proxy" {
					got = after.Proxy["east"]
				}
				if got != fresh.CertPEM {
					t.Errorf("%s certificate not replaced", tt.changed)
				}
				var cl tCluster
				adminClient(t, east).want(200, "GET", "/v1/cluster", nil, &cl)
				if cl.SyncerCertificate != after.Syncer["east"] || cl.ProxyCertificate != after.Proxy["east"] {
					t.Error("GET /v1/cluster does not show the installed certificates")
				}
			}
		})
	}
}

func TestAPICertificateUpdate(t *testing.T) {
	s, east, _ := startDemo(t, Options{})
	next, err := certs.Generate(certs.Profile{FQDN: "east.redis.local", Kind: certs.KindProxy,
		NotBefore: east.s.opts.Now(), KeyType: certs.ECDSAP256, IPAddresses: localhostIPs()})
	if err != nil {
		t.Fatal(err)
	}
	old := adminClient(t, east)
	old.want(200, "PUT", "/v1/cluster/update_cert", map[string]string{"name": "api", "certificate": next.CertPEM, "key": next.KeyPEM}, nil)
	if got := s.Clusters()[0].APICertPEM; got != next.CertPEM {
		t.Fatal("Clusters() does not show the new API certificate")
	}
	// A new connection pinned to the old certificate fails; pinned to the new one it works.
	oldPin := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, east.APICertPEM, false)}
	if _, _, err := oldPin.try("GET", "/v1/cluster", nil); err == nil {
		t.Error("a client pinning the replaced API certificate still connects")
	}
	newPin := &client{t: t, base: east.URL, user: east.AdminUser, pass: east.AdminPassword, hc: pinnedHTTP(t, next.CertPEM, false)}
	newPin.want(200, "GET", "/v1/cluster", nil, nil)
}

func TestRSAKeys(t *testing.T) {
	topo := Topology{Clusters: []ClusterSpec{{Name: "solo", FQDN: "solo.redis.local",
		Users:     []UserSpec{{Username: "admin", Password: "pw", Role: RoleAdmin}},
		Databases: []DBSpec{{UID: 1, Name: "db", Port: 15000}}}}}
	s := startSim(t, topo, Options{KeyType: certs.RSA2048})
	h := s.Cluster("solo")
	syncer, _ := h.SyncerCert()
	c, err := certs.ParseOne(syncer)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.X509.PublicKey.(*rsa.PublicKey); !ok {
		t.Errorf("syncer key %T, want RSA", c.X509.PublicKey)
	}
	adminClient(t, h).want(http.StatusOK, "GET", "/v1/cluster", nil, nil)
}
