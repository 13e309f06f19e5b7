package certs_test

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/certs/certstest"
)

var t0 = certs.T0

func syncerProfile(fqdn string) certs.Profile {
	return certs.Profile{FQDN: fqdn, Kind: certs.KindSyncer, NotBefore: t0, KeyType: certs.ECDSAP256}
}

func newCA(t *testing.T, opts certstest.CAOptions) *certstest.CA {
	t.Helper()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = t0
	}
	ca, err := certstest.NewCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *certstest.CA, p certs.Profile) certstest.Issued {
	t.Helper()
	iss, err := ca.Issue(p)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func generate(t *testing.T, p certs.Profile) certs.KeyPair {
	t.Helper()
	kp, err := certs.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// signRaw signs tmpl with parent's key without the checks GenerateWith makes, for chains no CA should
// issue (a leaf under a non-CA intermediate, a CA below a path length of 0). It returns the certificate
// and its new key.
func signRaw(t *testing.T, tmpl *x509.Certificate, parent certs.Cert, parentKey crypto.Signer) (certs.Cert, crypto.Signer) {
	t.Helper()
	key, err := certs.NewKey(certs.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.X509, key.Public(), parentKey)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return certs.FromX509(x), key
}

// leafTemplate is a syncer leaf valid for a year from t0 with the given extended key usages.
func leafTemplate(usages ...x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		Subject:  pkix.Name{CommonName: "cluster9.example.com", OrganizationalUnit: []string{"syncer"}},
		DNSNames: []string{"cluster9.example.com"}, NotBefore: t0, NotAfter: t0.Add(certs.DefaultValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usages, BasicConstraintsValid: true,
	}
}

func bundle(cs ...certs.Cert) string { return certs.Bundle(cs) }

func TestValidateChain(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	syncer := issue(t, ca, syncerProfile("cluster1.example.com"))
	proxy := issue(t, ca, certs.Profile{FQDN: "cluster1.example.com", Kind: certs.KindProxy, NotBefore: t0, KeyType: certs.ECDSAP256})
	self := generate(t, syncerProfile("cluster2.example.com"))
	stranger := generate(t, syncerProfile("cluster1.example.com"))
	leaf, inter, root := syncer.Leaf.Cert, ca.Intermediate, ca.Root

	day := 24 * time.Hour
	expiredInter := newCA(t, certstest.CAOptions{ModifyIntermediate: func(x *x509.Certificate) { x.NotAfter = t0.Add(day) }})
	expiredInterLeaf := issue(t, expiredInter, syncerProfile("cluster1.example.com"))
	expiredRoot := newCA(t, certstest.CAOptions{ModifyRoot: func(x *x509.Certificate) { x.NotAfter = t0.Add(day) }})
	expiredRootLeaf := issue(t, expiredRoot, syncerProfile("cluster1.example.com"))

	// An intermediate that is not a CA: GenerateWith refuses to issue under it, so sign by hand.
	notCA := newCA(t, certstest.CAOptions{ModifyIntermediate: func(x *x509.Certificate) {
		x.IsCA, x.MaxPathLen, x.MaxPathLenZero, x.KeyUsage = false, -1, false, x509.KeyUsageDigitalSignature
	}})
	if _, err := notCA.Issue(syncerProfile("cluster1.example.com")); !errors.Is(err, certs.ErrNotCA) {
		t.Errorf("Issue() under a non-CA intermediate = %v, want ErrNotCA", err)
	}
	notCALeaf, _ := signRaw(t, leafTemplate(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth), notCA.Intermediate, notCA.IntermediateKey)

	// A second intermediate below one whose path length is 0.
	deep, deepKey := signRaw(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Too Deep CA"}, NotBefore: t0, NotAfter: t0.Add(3 * 365 * day),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, inter, ca.IntermediateKey)
	deepLeaf, _ := signRaw(t, leafTemplate(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth), deep, deepKey)

	// Usages: a leaf for servers only, and an intermediate that may issue for servers only.
	serverOnly, _ := signRaw(t, leafTemplate(x509.ExtKeyUsageServerAuth), inter, ca.IntermediateKey)
	serverCA := newCA(t, certstest.CAOptions{ModifyIntermediate: func(x *x509.Certificate) { x.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }})
	serverCALeaf := issue(t, serverCA, syncerProfile("cluster1.example.com"))

	showcerts := " 0 s:CN=cluster1.example.com, OU=syncer\n   i:CN=replica-tls test Intermediate CA\n" + leaf.PEM +
		" 1 s:CN=replica-tls test Intermediate CA\n   i:CN=replica-tls test Root CA\n" + inter.PEM +
		"subject=CN=replica-tls test Root CA\nissuer=CN=replica-tls test Root CA\n" + root.PEM
	firstBody := strings.Split(inter.PEM, "\n")[1]

	tests := []struct {
		name      string
		chainPEM  string
		keyPEM    string
		kind      certs.Kind
		now       time.Time
		wantN     int     // elements, when valid
		wantErrs  []error // when invalid: each must be wrapped
		wantMsg   []string
		notWanted []error
	}{
		// Good chains.
		{name: "self-signed certificate: a chain of one", chainPEM: self.CertPEM, keyPEM: self.KeyPEM, kind: certs.KindSyncer, now: t0, wantN: 1},
		{name: "leaf and intermediate, root left out", chainPEM: bundle(leaf, inter), keyPEM: syncer.KeyPEM, kind: certs.KindSyncer, now: t0, wantN: 2},
		{name: "leaf, intermediate, root", chainPEM: syncer.ChainPEM, keyPEM: syncer.KeyPEM, kind: certs.KindSyncer, now: t0, wantN: 3},
		{name: "proxy chain for a proxy, no key given", chainPEM: proxy.ChainPEM, kind: certs.KindProxy, now: t0.Add(300 * day), wantN: 3},
		{name: "no purpose given", chainPEM: serverOnly.PEM + inter.PEM, now: t0, wantN: 2},
		{name: "openssl s_client -showcerts text around the blocks", chainPEM: showcerts, keyPEM: syncer.KeyPEM, kind: certs.KindSyncer, now: t0, wantN: 3},
		{name: "CRLF line endings", chainPEM: strings.ReplaceAll(syncer.ChainPEM, "\n", "\r\n"), keyPEM: syncer.KeyPEM, kind: certs.KindSyncer, now: t0, wantN: 3},
		{name: "server-only leaf for a proxy", chainPEM: bundle(serverOnly, inter, root), kind: certs.KindProxy, now: t0, wantN: 3},

		// Order.
		{name: "intermediate first", chainPEM: bundle(inter, leaf, root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrChainOrder}, wantMsg: []string{`chain element 1 (leaf) certificate "CN=replica-tls test Intermediate CA`, `not by element 2 "CN=cluster1.example.com`}},
		{name: "root first: reversed", chainPEM: bundle(root, inter, leaf), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrChainOrder}, wantMsg: []string{"chain element 1 (leaf)", "root first? List it leaf to root", "chain element 2 (intermediate)"}},
		{name: "root before intermediate", chainPEM: bundle(leaf, root, inter), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrChainOrder}, wantMsg: []string{"chain element 1 (leaf)", `issued by "CN=replica-tls test Intermediate CA`}},
		{name: "another CA's intermediate", chainPEM: bundle(leaf, expiredInter.Intermediate), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrChainOrder}, wantMsg: []string{"another CA with the same name"}},

		// Key.
		{name: "a key that is not the leaf's", chainPEM: syncer.ChainPEM, keyPEM: stranger.KeyPEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrKeyMismatch}, wantMsg: []string{"chain element 1 (leaf)"}},
		{name: "the intermediate's certificate as key", chainPEM: syncer.ChainPEM, keyPEM: inter.PEM, kind: certs.KindSyncer, now: t0,
			wantMsg: []string{"private key", "is not a private key"}},

		// Dates: every element.
		{name: "expired intermediate", chainPEM: expiredInterLeaf.ChainPEM, keyPEM: expiredInterLeaf.KeyPEM, kind: certs.KindSyncer, now: t0.Add(2 * day),
			wantErrs: []error{certs.ErrExpired}, wantMsg: []string{`chain element 2 (intermediate) certificate "CN=replica-tls test Intermediate CA`}},
		{name: "expired root", chainPEM: expiredRootLeaf.ChainPEM, kind: certs.KindSyncer, now: t0.Add(2 * day),
			wantErrs: []error{certs.ErrExpired}, wantMsg: []string{`chain element 3 (root) certificate "CN=replica-tls test Root CA`}},
		{name: "expired leaf", chainPEM: syncer.ChainPEM, kind: certs.KindSyncer, now: t0.Add(400 * day),
			wantErrs: []error{certs.ErrExpired}, wantMsg: []string{"chain element 1 (leaf)"}},
		{name: "not yet valid", chainPEM: syncer.ChainPEM, kind: certs.KindSyncer, now: t0.Add(-2 * time.Hour),
			wantErrs: []error{certs.ErrNotYetValid}, wantMsg: []string{"chain element 1 (leaf)", "chain element 2 (intermediate)", "chain element 3 (root)"}},

		// Issuers.
		{name: "intermediate that is not a CA", chainPEM: bundle(notCALeaf, notCA.Intermediate, notCA.Root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrNotCA}, wantMsg: []string{`element 2 "CN=replica-tls test Intermediate CA`, "basicConstraints CA:FALSE"}, notWanted: []error{certs.ErrChainOrder}},
		{name: "CA below an intermediate of path length 0", chainPEM: bundle(deepLeaf, deep, inter, root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrNotCA}, wantMsg: []string{"chain element 2 (intermediate)", "allows 0 CA certificates below it, the chain has 1"}},

		// Usage.
		{name: "server-only leaf for a syncer", chainPEM: bundle(serverOnly, inter, root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrUsage}, wantMsg: []string{"chain element 1 (leaf)", "want clientAuth"}},
		{name: "intermediate restricted to servers, for a syncer", chainPEM: serverCALeaf.ChainPEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrUsage}, wantMsg: []string{"chain element 2 (intermediate)", "want clientAuth"}},

		// Duplicates.
		{name: "root twice", chainPEM: bundle(leaf, inter, root, root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrDuplicate}, wantMsg: []string{"chain element 4 (root)", "the same as element 3"}, notWanted: []error{certs.ErrChainOrder}},
		{name: "intermediate twice", chainPEM: bundle(leaf, inter, inter, root), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrDuplicate, certs.ErrChainOrder}, wantMsg: []string{"chain element 3 (intermediate)", "the same as element 2"}},
		{name: "leaf twice", chainPEM: bundle(leaf, leaf), kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrDuplicate}, wantMsg: []string{"the same as element 1"}},

		// Every problem at once.
		{name: "expired intermediate, wrong key and wrong order", chainPEM: bundle(expiredInterLeaf.Leaf.Cert, expiredInter.Root, expiredInter.Intermediate),
			keyPEM: stranger.KeyPEM, kind: certs.KindSyncer, now: t0.Add(2 * day),
			wantErrs: []error{certs.ErrExpired, certs.ErrKeyMismatch, certs.ErrChainOrder}, wantMsg: []string{"invalid certificate chain of 3"}},

		// What does not parse as a chain.
		{name: "a trailing private key block", chainPEM: syncer.ChainPEM + syncer.KeyPEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrPrivateKey}, wantMsg: []string{"PEM block 4"}},
		{name: "a private key first", chainPEM: syncer.KeyPEM + syncer.ChainPEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrPrivateKey}, wantMsg: []string{"PEM block 1"}},
		{name: "binary garbage between blocks", chainPEM: leaf.PEM + "\x00\x01\xfe\xff\n" + inter.PEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrMalformed}, wantMsg: []string{"binary data between PEM blocks 1 and 2"}},
		{name: "base64 between blocks: a block whose BEGIN line was lost", chainPEM: leaf.PEM + firstBody + "\n" + firstBody + "\n" + root.PEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrMalformed}, wantMsg: []string{"base64 data outside any PEM block between PEM blocks 1 and 2"}},
		{name: "a truncated middle block", chainPEM: leaf.PEM + inter.PEM[:len(inter.PEM)/2] + "\n" + root.PEM, kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrMalformed}, wantMsg: []string{"PEM block 2"}},
		{name: "garbage after the last block", chainPEM: syncer.ChainPEM + "MIIB", kind: certs.KindSyncer, now: t0,
			wantErrs: []error{certs.ErrMalformed}, wantMsg: []string{"data after PEM block 3"}},
		{name: "empty", chainPEM: " \n", kind: certs.KindSyncer, now: t0, wantErrs: []error{certs.ErrEmpty}},

		// Bad requests.
		{name: "unknown purpose", chainPEM: syncer.ChainPEM, kind: "redisdb", now: t0, wantMsg: []string{`kind "redisdb"`}},
		{name: "no clock", chainPEM: syncer.ChainPEM, kind: certs.KindSyncer, wantMsg: []string{"time to check at is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := certs.ValidateChain(tt.chainPEM, tt.keyPEM, tt.kind, tt.now)
			if tt.wantN > 0 {
				if err != nil {
					t.Fatalf("ValidateChain() = %v", err)
				}
				if len(ch.Elements) != tt.wantN || ch.LeafFingerprint() != ch.Elements[0].Fingerprint {
					t.Errorf("chain of %d elements, leaf %s; want %d", len(ch.Elements), ch.LeafFingerprint(), tt.wantN)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateChain() = nil, want an error")
			}
			if ch.Elements != nil {
				t.Errorf("ValidateChain() returned a chain with its error")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("ValidateChain() = %v\nwant it to wrap %v", err, want)
				}
			}
			for _, not := range tt.notWanted {
				if errors.Is(err, not) {
					t.Errorf("ValidateChain() = %v\nwant it not to wrap %v", err, not)
				}
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ValidateChain() = %v\nwant it to contain %q", err, want)
				}
			}
			certs.AssertNoSecrets(t, err, tt.chainPEM, tt.keyPEM, syncer.KeyPEM, stranger.KeyPEM)
		})
	}
}

func TestChainAccessors(t *testing.T) {
	ca := newCA(t, certstest.CAOptions{})
	syncer := issue(t, ca, syncerProfile("cluster1.example.com"))
	sibling := issue(t, ca, syncerProfile("cluster1.example.com"))
	self := generate(t, syncerProfile("cluster2.example.com"))
	fp := func(cs []certs.Cert) []string {
		out := []string{}
		for _, c := range cs {
			out = append(out, c.Fingerprint)
		}
		return out
	}
	leaf, inter, root := syncer.Leaf.Cert.Fingerprint, ca.Intermediate.Fingerprint, ca.Root.Fingerprint
	tests := []struct {
		name                      string
		pem                       string
		wantIssuers, wantInterm   []string
		wantRoot                  string
		wantLeaf                  string
		wantSameAsSyncerLeafAlone bool
		wantIssuerOfLeaf          string
		wantChainNotAfter         time.Time
	}{
		{"three elements", syncer.ChainPEM, []string{inter, root}, []string{inter}, root, leaf, true,
			ca.Intermediate.X509.Subject.String(), syncer.Leaf.Cert.X509.NotAfter},
		{"root left out", bundle(syncer.Leaf.Cert, ca.Intermediate), []string{inter}, []string{inter}, "", leaf, true,
			ca.Intermediate.X509.Subject.String(), syncer.Leaf.Cert.X509.NotAfter},
		{"self-signed", self.CertPEM, []string{}, []string{}, "", self.Cert.Fingerprint, false,
			self.Cert.X509.Subject.String(), self.Cert.X509.NotAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := certs.ParseChain(tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Leaf().Fingerprint != tt.wantLeaf || ch.LeafFingerprint() != tt.wantLeaf {
				t.Errorf("leaf %s, want %s", ch.LeafFingerprint(), tt.wantLeaf)
			}
			if diff := cmp.Diff(tt.wantIssuers, fp(ch.Issuers())); diff != "" {
				t.Errorf("Issuers() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantInterm, fp(ch.Intermediates())); diff != "" {
				t.Errorf("Intermediates() (-want +got):\n%s", diff)
			}
			r, ok := ch.Root()
			if ok != (tt.wantRoot != "") || r.Fingerprint != tt.wantRoot {
				t.Errorf("Root() = %s, %v; want %q", r.Fingerprint, ok, tt.wantRoot)
			}
			if got := certs.SameLeaf(tt.pem, syncer.Leaf.CertPEM); got != tt.wantSameAsSyncerLeafAlone {
				t.Errorf("SameLeaf(chain, the syncer leaf alone) = %v", got)
			}
			if certs.SameLeaf(tt.pem, sibling.ChainPEM) {
				t.Errorf("SameLeaf() of two leaves of one CA = true")
			}
			if again, err := certs.ParseChain(ch.PEM()); err != nil || !again.SameLeaf(ch) || len(again.Elements) != len(ch.Elements) {
				t.Errorf("PEM() does not parse back to the chain: %v", err)
			}

			s := ch.Summary()
			want := certs.ChainSummary{Summary: ch.Leaf().Summary(), Issuer: tt.wantIssuerOfLeaf, Elements: len(ch.Elements), ChainNotAfter: tt.wantChainNotAfter}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("Summary() (-want +got):\n%s", diff)
			}
			js, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(js, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"fingerprint", "subject", "not_after", "issuer", "elements", "chain_not_after"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("summary JSON %s lacks %q", js, k)
				}
			}
			if strings.Contains(string(js), "BEGIN") || strings.Contains(string(js), strings.Split(syncer.Leaf.CertPEM, "\n")[1][:20]) {
				t.Errorf("summary JSON carries a certificate body: %s", js)
			}
		})
	}
	if certs.SameLeaf("garbage", syncer.ChainPEM) || (certs.Chain{}).SameLeaf(certs.Chain{}) {
		t.Errorf("SameLeaf() of nothing = true")
	}
}

// The chain expires when its first element does: the summary says when.
func TestChainSummaryEarliestNotAfter(t *testing.T) {
	soon := t0.Add(30 * 24 * time.Hour).Truncate(time.Second)
	ca := newCA(t, certstest.CAOptions{ModifyIntermediate: func(x *x509.Certificate) { x.NotAfter = soon }})
	iss := issue(t, ca, syncerProfile("cluster1.example.com"))
	s := iss.Chain.Summary()
	if !s.ChainNotAfter.Equal(soon) || !s.NotAfter.Equal(iss.Leaf.Cert.X509.NotAfter) {
		t.Errorf("chain not after %s, leaf not after %s; want %s and the leaf's %s", s.ChainNotAfter, s.NotAfter, soon, iss.Leaf.Cert.X509.NotAfter)
	}
}

func TestValidateEmptyChain(t *testing.T) {
	if err := (certs.Chain{}).Validate(certs.ChainCheck{Now: t0}); !errors.Is(err, certs.ErrEmpty) {
		t.Errorf("Validate() of an empty chain = %v, want ErrEmpty", err)
	}
	if err := (certs.Chain{Elements: []certs.Cert{{}}}).Validate(certs.ChainCheck{Now: t0}); !errors.Is(err, certs.ErrMalformed) {
		t.Errorf("Validate() of a chain of an empty Cert = %v, want ErrMalformed", err)
	}
}
