package simulator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeDBUpdate: the PUT body decoder never panics, and a body it accepts, written back, is
// accepted again as the same update.
func FuzzDecodeDBUpdate(f *testing.F) {
	now := time.Now()
	c := genCert(f, "fuzz.redis.local", now, 24*time.Hour)
	cert, _ := json.Marshal(c.CertPEM)
	key, _ := json.Marshal(c.KeyPEM)
	for _, seed := range []string{
		`{}`, `null`, `[]`, `{"tls_mode":"enabled"}`, `{"tls_mode":null}`,
		`{"enforce_client_authentication":"enabled","mtls_allow_outdated_certs":false}`,
		`{"authentication_ssl_client_certs":[{"client_cert":` + string(cert) + `}]}`,
		`{"authentication_ssl_client_certs":[{"client_cert":` + string(cert) + `},{"client_cert":` + string(cert) + `}]}`,
		`{"replica_sources":[{"uid":1,"uri":"redis://admin:p@redis-1.a.local:1","encryption":true,"server_cert":` + string(cert) + `,"status":"in-sync","lag":0}]}`,
		`{"replica_sources":[{"uri":"redis://h:2","client_cert":` + string(cert) + `,"client_key":` + string(key) + `,"server_cert":` + string(cert) + `,"encryption":true,"compression":6}]}`,
		`{"replica_sources":[{"uri":"redis://[::1]:6379/"}]}`,
		`{"authentication_ssl_crdt_certs":[]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := decodeDBUpdate(body, now)
		if err != nil {
			if err.status != 400 && err.status != 406 {
				t.Fatalf("status %d for a bad body", err.status)
			}
			return
		}
		again, err := decodeDBUpdate(u.encode(), now)
		if err != nil {
			t.Fatalf("accepted body %q re-encoded as %q is rejected: %v", body, u.encode(), err)
		}
		if diff := cmp.Diff(u, again); diff != "" {
			t.Fatalf("re-decoded update differs (-first +second):\n%s", diff)
		}
		// Applying to a database must not panic either.
		_, _, _ = u.apply(DBConfig{UID: 1, ReplicaSources: []ReplicaSourceConfig{{UID: 1, URI: "redis://h:1"}}}, 2)
	})
}
