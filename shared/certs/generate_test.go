package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestGenerate(t *testing.T) {
	localhost := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	tests := []struct {
		name      string
		profile   Profile
		wantOU    string
		wantUsage x509.KeyUsage
	}{
		{"syncer ECDSA", Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256},
			"syncer", x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign},
		{"proxy ECDSA with local SANs", Profile{FQDN: "cluster2.example.com", Kind: KindProxy, NotBefore: t0, KeyType: ECDSAP256,
			IPAddresses: localhost, ExtraDNSNames: []string{"localhost"}, Organization: "Example Ops", Validity: 90 * 24 * time.Hour},
			"redisdb", x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign},
		{"syncer RSA (the default key type)", Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0},
			"syncer", x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign},
		{"proxy RSA", Profile{FQDN: "Cluster3.Example.com", Kind: KindProxy, NotBefore: t0, KeyType: RSA2048, IPAddresses: localhost[:1]},
			"redisdb", x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp := generate(t, tt.profile)
			p := tt.profile.withDefaults()
			x := kp.Cert.X509

			wantSubject := fmt.Sprintf("CN=%s,OU=%s,O=%s", p.FQDN, tt.wantOU, p.Organization)
			if got := x.Subject.String(); got != wantSubject {
				t.Errorf("subject = %q, want %q", got, wantSubject)
			}
			if got := x.Issuer.String(); got != wantSubject {
				t.Errorf("issuer = %q, want the subject (self-signed)", got)
			}
			if diff := cmp.Diff(append([]string{p.FQDN, "*." + p.FQDN}, p.ExtraDNSNames...), x.DNSNames); diff != "" {
				t.Errorf("DNS SANs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(p.IPAddresses, x.IPAddresses, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("IP SANs (-want +got):\n%s", diff)
			}
			if !x.NotBefore.Equal(t0.Add(-time.Minute)) || !x.NotAfter.Equal(t0.Add(p.Validity)) {
				t.Errorf("validity %s to %s, want %s to %s", x.NotBefore, x.NotAfter, t0.Add(-time.Minute), t0.Add(p.Validity))
			}
			if x.KeyUsage != tt.wantUsage {
				t.Errorf("KeyUsage = %b, want %b", x.KeyUsage, tt.wantUsage)
			}
			if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, x.ExtKeyUsage); diff != "" {
				t.Errorf("ExtKeyUsage (-want +got):\n%s", diff)
			}
			if !x.IsCA || !x.BasicConstraintsValid {
				t.Errorf("IsCA = %v, BasicConstraintsValid = %v, want both true", x.IsCA, x.BasicConstraintsValid)
			}
			if x.SerialNumber.Sign() <= 0 || x.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %s is not a positive number of at most 128 bits", x.SerialNumber)
			}
			switch pub := x.PublicKey.(type) {
			case *rsa.PublicKey:
				if p.KeyType.rsaBits() == 0 || pub.N.BitLen() != p.KeyType.rsaBits() {
					t.Errorf("RSA %d-bit key for key type %s", pub.N.BitLen(), p.KeyType)
				}
			case *ecdsa.PublicKey:
				if p.KeyType != ECDSAP256 || pub.Curve != elliptic.P256() {
					t.Errorf("ECDSA %s key for key type %s", pub.Curve.Params().Name, p.KeyType)
				}
			default:
				t.Errorf("public key %T", pub)
			}

			// The key: one PKCS#8 block, the certificate's own.
			if _, rest := pem.Decode([]byte(kp.KeyPEM)); len(rest) != 0 {
				t.Errorf("KeyPEM holds more than one block")
			}
			key, ok := parsePKCS8(t, kp.KeyPEM).(interface{ Public() crypto.PublicKey })
			if !ok || !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(x.PublicKey) {
				t.Errorf("KeyPEM is not the certificate's key")
			}
			if err := CheckKeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
				t.Errorf("CheckKeyPair() = %v", err)
			}
			if back, err := ParseOne(kp.CertPEM); err != nil || back.Fingerprint != kp.Cert.Fingerprint || kp.CertPEM != kp.Cert.PEM {
				t.Errorf("CertPEM does not parse back to Cert: %v", err)
			}

			// Its own trust anchor, for both directions of a TLS connection, on the FQDN and under the wildcard.
			roots := x509.NewCertPool()
			roots.AddCert(x)
			for _, v := range []struct {
				host  string
				usage x509.ExtKeyUsage
			}{
				{p.FQDN, x509.ExtKeyUsageServerAuth},
				{"node1." + p.FQDN, x509.ExtKeyUsageServerAuth},
				{"", x509.ExtKeyUsageClientAuth},
			} {
				_, err := x.Verify(x509.VerifyOptions{Roots: roots, DNSName: v.host, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{v.usage}})
				if err != nil {
					t.Errorf("Verify(%q, %s) = %v", v.host, usageName(v.usage), err)
				}
			}
			if _, err := x.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example.com", CurrentTime: t0}); err == nil {
				t.Errorf("Verify accepted a host name outside the SANs")
			}
			if _, err := x.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0.Add(p.Validity + time.Second)}); err == nil {
				t.Errorf("Verify accepted the certificate after NotAfter")
			}

			// Rotation reads the profile back from the certificate.
			got, err := ProfileOf(kp.Cert)
			if err != nil {
				t.Fatalf("ProfileOf() = %v", err)
			}
			if diff := cmp.Diff(p, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ProfileOf(Generate(p)) (-p +got):\n%s", diff)
			}
		})
	}
}

func TestGenerateTwiceGivesNewKeyAndSerial(t *testing.T) {
	p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256}
	a, b := generate(t, p), generate(t, p)
	if a.Cert.X509.SerialNumber.Cmp(b.Cert.X509.SerialNumber) == 0 {
		t.Errorf("two certificates share serial %s", a.Cert.X509.SerialNumber)
	}
	if a.Cert.Fingerprint == b.Cert.Fingerprint || a.KeyPEM == b.KeyPEM {
		t.Errorf("two generations gave the same certificate or key")
	}
	if err := CheckKeyPair(a.CertPEM, b.KeyPEM); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("CheckKeyPair(a, key of b) = %v, want ErrKeyMismatch", err)
	}
}

func TestGenerateDropsSubSecondClock(t *testing.T) {
	p := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0.Add(999 * time.Millisecond), KeyType: ECDSAP256}
	kp := generate(t, p)
	if !kp.Cert.X509.NotBefore.Equal(t0.Add(-time.Minute)) {
		t.Errorf("NotBefore = %s, want %s", kp.Cert.X509.NotBefore, t0.Add(-time.Minute))
	}
	got, err := ProfileOf(kp.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NotBefore.Equal(t0) || got.Validity != DefaultValidity {
		t.Errorf("ProfileOf() NotBefore %s validity %s, want %s and %s", got.NotBefore, got.Validity, t0, DefaultValidity)
	}
}

// A syncer and a proxy certificate from Generate carry a real mutually authenticated HTTPS connection,
// each side pinning exactly the other's certificate, as a Replica Of link does.
func TestGeneratedCertsMutualTLS(t *testing.T) {
	now := time.Now() // crypto/tls checks validity against the real clock
	local := []net.IP{net.ParseIP("127.0.0.1")}
	proxy := generate(t, Profile{FQDN: "source.example.com", Kind: KindProxy, NotBefore: now, KeyType: ECDSAP256, IPAddresses: local})
	syncer := generate(t, Profile{FQDN: "dest.example.com", Kind: KindSyncer, NotBefore: now, KeyType: ECDSAP256})
	strangerSyncer := generate(t, Profile{FQDN: "dest.example.com", Kind: KindSyncer, NotBefore: now, KeyType: ECDSAP256})
	strangerProxy := generate(t, Profile{FQDN: "source.example.com", Kind: KindProxy, NotBefore: now, KeyType: ECDSAP256, IPAddresses: local})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, FromX509(r.TLS.PeerCertificates[0]).Fingerprint)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{tlsPair(t, proxy)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool(syncer),
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected below
	srv.StartTLS()
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		serverName string
		pinned     KeyPair
		client     KeyPair
		wantErr    bool
	}{
		{"pinned both ways, by IP", "", proxy, syncer, false},
		{"pinned both ways, SNI under the wildcard", "db-12.source.example.com", proxy, syncer, false},
		{"server does not trust this syncer", "", proxy, strangerSyncer, true},
		{"client pins another proxy certificate", "", strangerProxy, syncer, true},
		{"name outside the SANs", "elsewhere.example.com", proxy, syncer, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs:      pool(tt.pinned),
				Certificates: []tls.Certificate{tlsPair(t, tt.client)},
				ServerName:   tt.serverName,
				MinVersion:   tls.VersionTLS12,
			}}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET succeeded, want a TLS failure")
				}
				return
			}
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.client.Cert.Fingerprint {
				t.Errorf("server saw client certificate %s, want %s", body, tt.client.Cert.Fingerprint)
			}
		})
	}
}

func tlsPair(t *testing.T, kp KeyPair) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair([]byte(kp.CertPEM), []byte(kp.KeyPEM))
	if err != nil {
		t.Fatalf("tls.X509KeyPair: %v", err)
	}
	return c
}

func pool(kps ...KeyPair) *x509.CertPool {
	p := x509.NewCertPool()
	for _, kp := range kps {
		p.AddCert(kp.Cert.X509)
	}
	return p
}

func TestProfileValidate(t *testing.T) {
	good := Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0}
	with := func(mod func(*Profile)) Profile {
		p := good
		mod(&p)
		return p
	}
	tests := []struct {
		name    string
		profile Profile
		wantMsg []string // empty: valid
	}{
		{"minimal", good, nil},
		{"all fields", with(func(p *Profile) {
			p.Kind, p.Organization, p.Validity, p.KeyType = KindProxy, "Example", time.Hour, ECDSAP256
			p.IPAddresses, p.ExtraDNSNames = []net.IP{net.ParseIP("::1")}, []string{"localhost", "*.apps.example.com"}
		}), nil},
		{"single-label FQDN", with(func(p *Profile) { p.FQDN = "redis" }), nil},
		{"empty FQDN", with(func(p *Profile) { p.FQDN = "" }), []string{"FQDN: empty"}},
		{"FQDN with a space", with(func(p *Profile) { p.FQDN = "cluster 1.example.com" }), []string{"not a DNS name"}},
		{"FQDN with a trailing dot", with(func(p *Profile) { p.FQDN = "cluster1.example.com." }), []string{"not a DNS name"}},
		{"FQDN with an empty label", with(func(p *Profile) { p.FQDN = "cluster1..example.com" }), []string{"not a DNS name"}},
		{"wildcard FQDN", with(func(p *Profile) { p.FQDN = "*.example.com" }), []string{"not a DNS name"}},
		{"FQDN with a URI", with(func(p *Profile) { p.FQDN = "https://cluster1.example.com" }), []string{"not a DNS name"}},
		{"label starting with a hyphen", with(func(p *Profile) { p.FQDN = "-a.example.com" }), []string{"not a DNS name"}},
		{"label of 64 characters", with(func(p *Profile) { p.FQDN = strings.Repeat("a", 64) + ".com" }), []string{"not a DNS name"}},
		{"FQDN longer than a CN may be", with(func(p *Profile) { p.FQDN = strings.Repeat("a", 60) + ".example.com" }), []string{"longer than 64"}},
		{"no kind", with(func(p *Profile) { p.Kind = "" }), []string{`kind ""`}},
		{"unknown kind", with(func(p *Profile) { p.Kind = "redisdb" }), []string{`kind "redisdb"`}},
		{"no NotBefore", with(func(p *Profile) { p.NotBefore = time.Time{} }), []string{"NotBefore is required"}},
		{"negative validity", with(func(p *Profile) { p.Validity = -time.Hour }), []string{"must be positive"}},
		{"unknown key type", with(func(p *Profile) { p.KeyType = "rsa1024" }), []string{`key type "rsa1024"`}},
		{"key type not generated", with(func(p *Profile) { p.KeyType = "ecdsa-p384" }), []string{`key type "ecdsa-p384"`}},
		{"key types named in upper case", with(func(p *Profile) { p.KeyType = "RSA4096" }), []string{`key type "RSA4096"`}},
		{"broken IP", with(func(p *Profile) { p.IPAddresses = []net.IP{net.ParseIP("127.0.0.1"), {1, 2, 3}} }), []string{"IP address 2"}},
		{"bad extra DNS name", with(func(p *Profile) { p.ExtraDNSNames = []string{"ok.example.com", "a_b"} }), []string{"extra DNS name 2"}},
		{"extra DNS name repeating the FQDN", with(func(p *Profile) { p.ExtraDNSNames = []string{"CLUSTER1.example.com"} }), []string{"already among the SANs"}},
		{"extra DNS name repeating the wildcard", with(func(p *Profile) { p.ExtraDNSNames = []string{"*.cluster1.example.com"} }), []string{"already among the SANs"}},
		{"extra DNS names repeating each other", with(func(p *Profile) { p.ExtraDNSNames = []string{"localhost", "localhost"} }), []string{"extra DNS name 2"}},
		{"every problem reported at once", Profile{FQDN: "a b", Kind: "x", KeyType: "y"}, []string{"FQDN", `kind "x"`, "NotBefore", `key type "y"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.profile.Validate()
			if len(tt.wantMsg) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error")
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
			// Generate refuses the same profile, with the same error, before doing any work.
			kp, gerr := Generate(tt.profile)
			if gerr == nil || gerr.Error() != err.Error() {
				t.Errorf("Generate() error = %v, want %v", gerr, err)
			}
			if diff := cmp.Diff(KeyPair{}, kp); diff != "" {
				t.Errorf("Generate() returned a key pair with its error")
			}
		})
	}
}

// OpenSSL-made syncer certificate (testdata/README.md): no backdating, exactly 365 days, as Redis
// Enterprise issues them.
func TestProfileOfOpenSSLSyncerCert(t *testing.T) {
	pemBytes, err := os.ReadFile("testdata/syncer-openssl.pem")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseOne(string(pemBytes))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProfileOf(c)
	if err != nil {
		t.Fatalf("ProfileOf() = %v", err)
	}
	want := Profile{
		FQDN:         "cluster1.example.com",
		Kind:         KindSyncer,
		Organization: DefaultOrganization,
		NotBefore:    c.X509.NotBefore.Add(time.Minute),
		Validity:     DefaultValidity - time.Minute, // documented: ProfileOf undoes Generate's backdating
		KeyType:      RSA2048,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ProfileOf() (-want +got):\n%s", diff)
	}
	if got, want := c.Summary().Subject, "CN=cluster1.example.com,OU=syncer,O=RedisLabs Enterprise Cluster"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth} {
		if err := c.CheckUsage(u); err != nil {
			t.Errorf("CheckUsage(%s) = %v", usageName(u), err)
		}
	}
}

func TestProfileOfRejects(t *testing.T) {
	subject := func(cn string, ous ...string) func(*x509.Certificate) {
		return func(x *x509.Certificate) {
			x.Subject = pkix.Name{CommonName: cn, OrganizationalUnit: ous, Organization: []string{DefaultOrganization}}
		}
	}
	noOU, _ := newCert(t, subject("cluster1.example.com"))
	otherOU, _ := newCert(t, subject("cluster1.example.com", "cm"))
	twoOUs, _ := newCert(t, subject("cluster1.example.com", "syncer", "redisdb"))
	badCN, _ := newCert(t, subject("not a host name", "syncer"))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    Cert
		wantMsg string
	}{
		{"no OU", noOU, "want one OU, found 0"},
		{"another OU", otherOU, `OU "cm" is neither`},
		{"two OUs", twoOUs, "found 2"},
		{"CN that is not a DNS name", badCN, "not a DNS name"},
		{"ECDSA P-384 key", newCertWithKey(t, p384, subject("cluster1.example.com", "syncer")), "ECDSA P-384 key is not one of rsa4096, rsa3072, rsa2048, ecdsa-p256"},
		{"Ed25519 key", newCertWithKey(t, edKey, subject("cluster1.example.com", "redisdb")), "Ed25519 key is not one of"},
		{"empty Cert", Cert{}, "no parsed certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProfileOf(tt.cert)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ProfileOf() error = %v, want %q", err, tt.wantMsg)
			}
			if diff := cmp.Diff(Profile{}, got); diff != "" {
				t.Errorf("ProfileOf() returned a profile with its error")
			}
		})
	}
}

func TestKeyPairNeverPrintsKey(t *testing.T) {
	kp := generate(t, Profile{FQDN: "cluster1.example.com", Kind: KindSyncer, NotBefore: t0, KeyType: ECDSAP256})
	keyBody := strings.Split(kp.KeyPEM, "\n")[1] // first base64 line of the key
	wrapper := struct{ Pair KeyPair }{kp}

	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("generated", "pair", kp)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("generated", slog.Any("pair", kp), slog.Any("ptr", &kp))

	outputs := map[string]string{
		"String":    kp.String(),
		"%v":        fmt.Sprintf("%v", kp),
		"%+v":       fmt.Sprintf("%+v", kp),
		"%#v":       fmt.Sprintf("%#v", kp),
		"%s":        fmt.Sprintf("%s", kp),
		"%q":        fmt.Sprintf("%q", kp),
		"%x":        fmt.Sprintf("%x", kp),
		"%d":        fmt.Sprintf("%d", kp),
		"pointer":   fmt.Sprintf("%+v", &kp),
		"slice":     fmt.Sprintf("%v", []KeyPair{kp}),
		"field":     fmt.Sprintf("%+v", wrapper),
		"Println":   fmt.Sprintln(kp),
		"slog text": text.String(),
		"slog JSON": js.String(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, keyBody) || strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("output shows the key: %s", out)
			}
			if !strings.Contains(out, kp.Cert.Fingerprint) || !strings.Contains(out, "redacted") {
				t.Errorf("output should name the certificate and say the key is redacted: %s", out)
			}
		})
	}
}

// Two certificates with the same subject (the old and new syncer certificate during a rotation) must
// be told apart by verifiers that look issuers up by subject: each names its own key as authority.
func TestGenerateSetsKeyIdentifiers(t *testing.T) {
	for _, kt := range []KeyType{ECDSAP256, RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			p := Profile{FQDN: "west.redis.local", Kind: KindSyncer, NotBefore: time.Now(), KeyType: kt}
			a, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, kp := range []KeyPair{a, b} {
				c := kp.Cert.X509
				if len(c.SubjectKeyId) == 0 || !bytes.Equal(c.SubjectKeyId, c.AuthorityKeyId) {
					t.Errorf("subject key id %x, authority key id %x: want equal and present", c.SubjectKeyId, c.AuthorityKeyId)
				}
			}
			if bytes.Equal(a.Cert.X509.SubjectKeyId, b.Cert.X509.SubjectKeyId) {
				t.Errorf("two keys got the same key identifier")
			}
		})
	}
}
