package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkGetDB measures one GET /v1/bdbs/{uid} round trip over pinned TLS (connection reused).
func BenchmarkGetDB(b *testing.B) {
	s := startServer(b, always(200, fixtureDB))
	c, _ := newClient(b, s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetDB(b.Context(), 3); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListDBs100 measures listing and decoding 100 realistic databases.
func BenchmarkListDBs100(b *testing.B) {
	dbs := make([]string, 100)
	for i := range dbs {
		dbs[i] = strings.Replace(fixtureDB, `"uid":3,`, fmt.Sprintf(`"uid":%d,`, i+1), 1)
	}
	body := "[" + strings.Join(dbs, ",") + "]"
	if !json.Valid([]byte(body)) {
		b.Fatal("invalid fixture")
	}
	s := startServer(b, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, 200, body) })
	c, _ := newClient(b, s)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.ListDBs(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != 100 {
			b.Fatalf("got %d dbs", len(got))
		}
	}
}
