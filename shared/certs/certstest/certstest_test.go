package certstest_test

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/certs/certstest"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// What Chain gives other packages' tests is a chain certs accepts for its kind, with its key, that a
// trust list of the CA's root covers.
func TestChain(t *testing.T) {
	for _, kind := range []certs.Kind{certs.KindSyncer, certs.KindProxy} {
		t.Run(string(kind), func(t *testing.T) {
			p := certs.Profile{FQDN: "east.redis.local", Kind: kind, NotBefore: t0, KeyType: certs.ECDSAP256}
			iss := certstest.Chain(t, p, nil)
			ch, err := certs.ValidateChain(iss.ChainPEM, iss.KeyPEM, kind, t0)
			if err != nil {
				t.Fatalf("ValidateChain() = %v", err)
			}
			if len(ch.Elements) != 3 || ch.LeafFingerprint() != iss.Leaf.Cert.Fingerprint || iss.Chain.LeafFingerprint() != iss.Leaf.Cert.Fingerprint {
				t.Errorf("chain of %d, leaf %s; want 3 and the issued leaf", len(ch.Elements), ch.LeafFingerprint())
			}
			root, ok := ch.Root()
			if !ok {
				t.Fatal("no root in the chain")
			}
			if cov := certs.CoversChain([]string{root.PEM}, ch, t0); !cov.Covered || cov.By != certs.CoveredByCA {
				t.Errorf("a trust list of the root does not cover the chain: %+v", cov)
			}
			got, err := certs.ProfileOf(iss.Leaf.Cert)
			if err != nil || got.FQDN != p.FQDN || got.Kind != kind || got.KeyType != certs.ECDSAP256 {
				t.Errorf("ProfileOf(leaf) = %+v, %v", got, err)
			}
		})
	}
}

func TestKeysShareOneKeyPerType(t *testing.T) {
	var keys certstest.Keys
	a, err := keys.Key(certs.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.Key(certs.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two keys for one type")
	}
	if _, err := keys.Key("rsa512"); err == nil {
		t.Errorf("Key(rsa512) = nil error")
	}
	ca, err := certstest.NewCA(certstest.CAOptions{NotBefore: t0, Keys: &keys})
	if err != nil {
		t.Fatal(err)
	}
	p := certs.Profile{FQDN: "east.redis.local", Kind: certs.KindSyncer, NotBefore: t0, KeyType: certs.ECDSAP256}
	one, err := ca.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	two, err := ca.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	if one.KeyPEM != two.KeyPEM || one.Leaf.Cert.Fingerprint == two.Leaf.Cert.Fingerprint {
		t.Errorf("leaves of one CA with Keys: want one key, two certificates")
	}
	if ca.RootKey == a || ca.IntermediateKey == a {
		t.Errorf("a CA key came from Keys: a wrong issuer's signature could verify")
	}
}

func TestNewCA(t *testing.T) {
	if _, err := certstest.NewCA(certstest.CAOptions{}); err == nil || !strings.Contains(err.Error(), "NotBefore is required") {
		t.Errorf("NewCA() without NotBefore = %v", err)
	}
	ca, err := certstest.NewCA(certstest.CAOptions{NotBefore: t0, Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	r, i := ca.Root.X509, ca.Intermediate.X509
	if r.Subject.CommonName != "acme Root CA" || i.Subject.CommonName != "acme Intermediate CA" {
		t.Errorf("subjects %q, %q", r.Subject, i.Subject)
	}
	if !certs.IsCA(ca.Root) || !certs.IsCA(ca.Intermediate) || !i.MaxPathLenZero || i.CheckSignatureFrom(r) != nil {
		t.Errorf("want a root CA and an intermediate CA of path length 0 it signed")
	}
	if certs.RoleOf(ca.Root) != certs.RoleRoot || certs.RoleOf(ca.Intermediate) != certs.RoleIntermediate {
		t.Errorf("roles %s, %s", certs.RoleOf(ca.Root), certs.RoleOf(ca.Intermediate))
	}
	for _, c := range []*x509.Certificate{r, i} {
		if !c.NotBefore.Before(t0) || !c.NotAfter.After(t0.AddDate(4, 0, 0)) {
			t.Errorf("%s valid %s to %s: want from before %s for years", c.Subject, c.NotBefore, c.NotAfter, t0)
		}
	}
	if got := ca.IssuersPEM(); got != ca.Intermediate.PEM+ca.Root.PEM {
		t.Errorf("IssuersPEM() is not the intermediate then the root")
	}
}

func TestIssuedNeverPrintsKey(t *testing.T) {
	iss := certstest.Chain(t, certs.Profile{FQDN: "east.redis.local", Kind: certs.KindSyncer, NotBefore: t0, KeyType: certs.ECDSAP256}, nil)
	keyBody := strings.Split(iss.KeyPEM, "\n")[1]
	for _, out := range []string{fmt.Sprint(iss), fmt.Sprintf("%+v", iss), fmt.Sprintf("%#v", &iss), fmt.Sprintf("%v", []certstest.Issued{iss})} {
		if strings.Contains(out, keyBody) || strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, "redacted") {
			t.Errorf("output shows the key or does not say it is redacted: %s", out)
		}
	}
}
