package secretstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replica-tls/replica-tls/infra/moto"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// One moto_server for the whole package; each test works under its own random prefix.
var (
	motoURL string
	motoErr error
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	srv, err := moto.Start(ctx)
	cancel()
	if err != nil {
		motoErr = err
		if errors.Is(err, moto.ErrNotInstalled) && os.Getenv("REPLICA_TLS_ALLOW_SKIP") == "1" {
			fmt.Fprintf(os.Stderr, "\n!!! REPLICA_TLS_ALLOW_SKIP=1: SKIPPING every test that needs moto_server: %s\n\n", moto.InstallHint)
		} else {
			fmt.Fprintf(os.Stderr, "\n!!! tests that need moto_server will FAIL: %v\n\n", err)
		}
		os.Exit(m.Run())
	}
	motoURL = srv.URL
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// requireMoto fails the test when moto_server could not be started, or skips it loudly when
// REPLICA_TLS_ALLOW_SKIP=1 and moto_server is not installed.
func requireMoto(t testing.TB) {
	t.Helper()
	if motoErr == nil {
		return
	}
	if errors.Is(motoErr, moto.ErrNotInstalled) && os.Getenv("REPLICA_TLS_ALLOW_SKIP") == "1" {
		t.Skipf("SKIPPED (REPLICA_TLS_ALLOW_SKIP=1): %s", moto.InstallHint)
	}
	if errors.Is(motoErr, moto.ErrNotInstalled) {
		t.Fatal(moto.InstallHint)
	}
	t.Fatalf("start moto_server: %v", motoErr)
}

// newClient is a real Secrets Manager client talking to the package's moto_server. Retries are off:
// moto answers some requests with HTTP 500 (see Store.versionsError) and retrying only slows tests.
func newClient(t testing.TB) *secretsmanager.Client {
	t.Helper()
	requireMoto(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(motoURL),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return secretsmanager.NewFromConfig(cfg)
}

// uniquePrefix keeps tests apart in the shared moto_server.
func uniquePrefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:]) + "/"
}

// countingAPI counts calls per operation on the real client. pageSize, when set, forces small
// ListSecrets pages so that pagination is exercised with few secrets.
type countingAPI struct {
	secretstore.API
	pageSize int32

	mu    sync.Mutex
	calls map[string]int
}

func newCounting(api secretstore.API) *countingAPI {
	return &countingAPI{API: api, calls: map[string]int{}}
}

func (c *countingAPI) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

func (c *countingAPI) n(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *countingAPI) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, n := range c.calls {
		sum += n
	}
	return sum
}

func (c *countingAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.count("GetSecretValue")
	return c.API.GetSecretValue(ctx, in, o...)
}

func (c *countingAPI) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	c.count("PutSecretValue")
	return c.API.PutSecretValue(ctx, in, o...)
}

func (c *countingAPI) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	c.count("CreateSecret")
	return c.API.CreateSecret(ctx, in, o...)
}

func (c *countingAPI) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, o ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	c.count("DescribeSecret")
	return c.API.DescribeSecret(ctx, in, o...)
}

func (c *countingAPI) ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, o ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	c.count("ListSecrets")
	if c.pageSize > 0 {
		cp := *in
		cp.MaxResults = aws.Int32(c.pageSize)
		in = &cp
	}
	return c.API.ListSecrets(ctx, in, o...)
}

func (c *countingAPI) ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, o ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	c.count("ListSecretVersionIds")
	return c.API.ListSecretVersionIds(ctx, in, o...)
}

func (c *countingAPI) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	c.count("UpdateSecretVersionStage")
	return c.API.UpdateSecretVersionStage(ctx, in, o...)
}

// fakeClock is an injected clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyPair is a self-signed ECDSA certificate and its key, both PEM.
type keyPair struct {
	Cert, Key string
}

func newKeyPair(t testing.TB, cn string) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, OrganizationalUnit: []string{"syncer"}},
		DNSNames:     []string{cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	return keyPair{
		Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Key:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}

// createRaw stores a secret exactly as given, bypassing the Store's validation.
func createRaw(t testing.TB, c *secretsmanager.Client, name, value string) {
	t.Helper()
	if _, err := c.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(value),
	}); err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
}

// keyBody is a piece of a PEM key's base64 body: if it shows up in a message, key material leaked.
func keyBody(keyPEM string) string {
	b, _ := pem.Decode([]byte(keyPEM))
	enc := pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: b.Bytes})
	return string(enc[len("-----BEGIN X-----\n") : len("-----BEGIN X-----\n")+40])
}
