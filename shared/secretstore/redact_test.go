package secretstore_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// TestClusterAPIRedactsOddURLPasswords covers URLs that url.Parse cannot read as user information:
// a password holding '/', '#', '?' or a space must still not be shown, and the user and host stay.
func TestClusterAPIRedactsOddURLPasswords(t *testing.T) {
	for _, pw := range []string{"p/a#s?s w", "p@ss:w/rd", "pa ss#"} {
		c := secretstore.ClusterAPI{Name: "east", URL: "https://admin:" + pw + "@east.example.com:9443", Username: "admin", Password: pw}
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for name, out := range map[string]string{"String": c.String(), "%#v": fmt.Sprintf("%#v", c), "json": string(js), "LogValue": c.LogValue().String()} {
			t.Run(pw+"/"+name, func(t *testing.T) {
				if strings.Contains(out, pw) {
					t.Errorf("output leaks the password: %s", out)
				}
				if !strings.Contains(out, "admin:[redacted]@east.example.com:9443") {
					t.Errorf("output does not show the URL's user and host: %s", out)
				}
			})
		}
	}
}
