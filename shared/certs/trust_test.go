package certs_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/certs/certstest"
)

func TestRoleOfAndIsCA(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	issued := issue(t, ca, syncerProfile("cluster1.example.com"))
	self := generate(t, syncerProfile("cluster2.example.com"))
	noCertSign, _ := signRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Signing Only"}, NotBefore: t0, NotAfter: t0.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature}, ca.Root, ca.RootKey)
	tests := []struct {
		name     string
		cert     certs.Cert
		wantCA   bool
		wantRole certs.Role
	}{
		{"root CA", ca.Root, true, certs.RoleRoot},
		{"intermediate CA", ca.Intermediate, true, certs.RoleIntermediate},
		{"CA-issued leaf", issued.Leaf.Cert, false, certs.RoleLeaf},
		// Redis Enterprise's own certificates are CA:TRUE and self-signed, and pinned as leaves.
		{"self-signed syncer certificate", self.Cert, true, certs.RoleLeaf},
		{"CA:TRUE without keyCertSign", noCertSign, false, certs.RoleLeaf},
		{"empty Cert", certs.Cert{}, false, certs.RoleLeaf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := certs.IsCA(tt.cert); got != tt.wantCA {
				t.Errorf("IsCA() = %v, want %v", got, tt.wantCA)
			}
			if got := certs.RoleOf(tt.cert); got != tt.wantRole {
				t.Errorf("RoleOf() = %s, want %s", got, tt.wantRole)
			}
		})
	}
}

func TestTrustListCovers(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	other := newCA(t, certstest.CAOptions{Name: "other"})
	day := 24 * time.Hour
	expiring := newCA(t, certstest.CAOptions{Name: "expiring", ModifyRoot: func(x *x509.Certificate) { x.NotAfter = t0.Add(day) }})
	syncer := issue(t, ca, syncerProfile("cluster1.example.com"))
	shortChain, err := certs.ParseChain(bundle(syncer.Leaf.Cert, ca.Intermediate)) // root left out
	if err != nil {
		t.Fatal(err)
	}
	fromExpiring := issue(t, expiring, syncerProfile("cluster1.example.com"))
	self := generate(t, syncerProfile("cluster2.example.com"))
	selfChain, err := certs.ParseChain(self.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	strangerSelf := generate(t, syncerProfile("cluster1.example.com"))
	serverOnly, _ := signRaw(t, leafTemplate(x509.ExtKeyUsageServerAuth), ca.Intermediate, ca.IntermediateKey)
	serverOnlyChain := certs.Chain{Elements: []certs.Cert{serverOnly, ca.Intermediate, ca.Root}}

	sum := func(c certs.Cert) *certs.Summary { s := c.Summary(); return &s }
	tests := []struct {
		name       string
		list       []string
		chain      certs.Chain
		at         time.Time
		want       certs.Coverage // Reason compared by wantReason
		wantReason string
	}{
		{"pinned leaf", []string{other.Root.PEM, syncer.Leaf.CertPEM}, syncer.Chain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredPinned, Entry: sum(syncer.Leaf.Cert), Index: 1}, ""},
		{"pinned self-signed syncer certificate", []string{strangerSelf.CertPEM, self.CertPEM}, selfChain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredPinned, Entry: sum(self.Cert), Index: 1}, ""},
		// Pinned needs no CA and no valid dates: Redis Enterprise skips further validation.
		{"pinned leaf, long expired", []string{syncer.Leaf.CertPEM}, syncer.Chain, t0.Add(3000 * day),
			certs.Coverage{Covered: true, By: certs.CoveredPinned, Entry: sum(syncer.Leaf.Cert), Index: 0}, ""},
		{"trusted root CA", []string{other.Root.PEM, ca.Root.PEM}, syncer.Chain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredByCA, Entry: sum(ca.Root), Index: 1}, ""},
		{"trusted root CA, chain without its root", []string{ca.Root.PEM}, shortChain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredByCA, Entry: sum(ca.Root), Index: 0}, ""},
		{"trusted intermediate", []string{ca.Intermediate.PEM}, syncer.Chain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredByCA, Entry: sum(ca.Intermediate), Index: 0}, ""},
		{"an unreadable entry is passed over", []string{"not a certificate", ca.IssuersPEM()}, syncer.Chain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredByCA, Entry: sum(ca.Intermediate), Index: 1}, ""},
		{"untrusted: another CA", []string{other.Root.PEM, other.Intermediate.PEM}, syncer.Chain, t0,
			certs.Coverage{Index: -1}, "unknown authority"},
		{"untrusted: leaves only", []string{strangerSelf.CertPEM}, syncer.Chain, t0,
			certs.Coverage{Index: -1}, "holds no CA certificate"},
		{"untrusted: empty list", nil, syncer.Chain, t0,
			certs.Coverage{Index: -1}, "holds no CA certificate"},
		{"expired CA", []string{expiring.Root.PEM}, fromExpiring.Chain, t0.Add(2 * day),
			certs.Coverage{Index: -1}, "expired"},
		{"the same CA before it expires", []string{expiring.Root.PEM}, fromExpiring.Chain, t0,
			certs.Coverage{Covered: true, By: certs.CoveredByCA, Entry: sum(expiring.Root), Index: 0}, ""},
		{"trusted CA, leaf not for clients", []string{ca.Root.PEM}, serverOnlyChain, t0,
			certs.Coverage{Index: -1}, "key usage"},
		{"empty chain", []string{ca.Root.PEM}, certs.Chain{}, t0,
			certs.Coverage{Index: -1}, "no certificate in the chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := certs.CoversChain(tt.list, tt.chain, tt.at)
			if !strings.Contains(got.Reason, tt.wantReason) || (tt.wantReason == "") != (got.Reason == "") {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.wantReason)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(certs.Coverage{}, "Reason")); diff != "" {
				t.Errorf("CoversChain() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrustListCAOnly(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	issued := issue(t, ca, syncerProfile("cluster1.example.com"))
	self := generate(t, syncerProfile("cluster2.example.com"))
	tests := []struct {
		name           string
		list           []string
		want           bool
		wantUnreadable []int
	}{
		{"a root", []string{ca.Root.PEM}, true, nil},
		{"a root and an intermediate", []string{ca.Root.PEM, ca.Intermediate.PEM}, true, nil},
		{"an intermediate", []string{ca.Intermediate.PEM}, true, nil},
		{"both in one entry", []string{ca.IssuersPEM()}, true, nil},
		{"a root and a self-signed syncer certificate", []string{ca.Root.PEM, self.CertPEM}, false, nil},
		{"a CA-issued leaf", []string{issued.Leaf.CertPEM}, false, nil},
		{"a whole chain in one entry: holds its leaf", []string{issued.ChainPEM}, false, nil},
		{"empty", nil, false, nil},
		{"only an unreadable entry", []string{"garbage"}, false, []int{0}},
		{"a root and an unreadable entry", []string{ca.Root.PEM, issued.KeyPEM}, true, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := certs.ReadTrustList(tt.list)
			if got := tl.CAOnly(); got != tt.want || certs.TrustListCAOnly(tt.list) != tt.want {
				t.Errorf("CAOnly() = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(tt.wantUnreadable, tl.Unreadable); diff != "" {
				t.Errorf("Unreadable (-want +got):\n%s", diff)
			}
			err := tl.CheckAddLeaf(issued.Chain)
			if tt.want != errors.Is(err, certs.ErrCAOnlyTrustList) || !tt.want && err != nil {
				t.Errorf("CheckAddLeaf() = %v, want ErrCAOnlyTrustList: %v", err, tt.want)
			}
			if tt.want && !strings.Contains(fmtErr(err), "CN=cluster1.example.com") {
				t.Errorf("CheckAddLeaf() = %v, want it to name the leaf", err)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Entries keep their list index and role; an entry with several certificates gives several.
func TestReadTrustList(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	self := generate(t, syncerProfile("cluster2.example.com"))
	tl := certs.ReadTrustList([]string{self.CertPEM, "junk", ca.IssuersPEM()})
	type row struct {
		Index int
		FP    string
		Role  certs.Role
	}
	var got []row
	for _, e := range tl.Entries {
		got = append(got, row{e.Index, e.Cert.Fingerprint, e.Role})
	}
	want := []row{
		{0, self.Cert.Fingerprint, certs.RoleLeaf},
		{2, ca.Intermediate.Fingerprint, certs.RoleIntermediate},
		{2, ca.Root.Fingerprint, certs.RoleRoot},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1}, tl.Unreadable); diff != "" {
		t.Errorf("Unreadable (-want +got):\n%s", diff)
	}
}
