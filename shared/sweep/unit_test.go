package sweep

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

func testTime() time.Time { return time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC) }

func durationOf(ns int64) time.Duration { return time.Duration(ns) }

func genCert(t *testing.T, fqdn string, kind certs.Kind, notBefore time.Time) certs.KeyPair {
	t.Helper()
	kp, err := certs.Generate(certs.Profile{FQDN: fqdn, Kind: kind, NotBefore: notBefore, KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestCollectCerts(t *testing.T) {
	now := testTime()
	eastSyncer, eastProxy := genCert(t, "east.example.com", certs.KindSyncer, now), genCert(t, "east.example.com", certs.KindProxy, now)
	westSyncer, westProxy := genCert(t, "west.example.com", certs.KindSyncer, now.Add(-time.Hour)), genCert(t, "west.example.com", certs.KindProxy, now)
	client := genCert(t, "app.example.com", certs.KindSyncer, now.Add(-2*time.Hour))
	fleet := &reconcile.Fleet{Clusters: map[string]*reconcile.ClusterState{
		"east": {Name: "east", SyncerCert: eastSyncer.CertPEM, ProxyCert: eastProxy.CertPEM, DBs: []reapi.DB{
			{UID: 1, AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: westSyncer.CertPEM}, {ClientCert: client.CertPEM}, {ClientCert: "not a certificate"}}},
			{UID: 2, AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: westSyncer.CertPEM}}},
		}},
		"west": {Name: "west", SyncerCert: westSyncer.CertPEM, ProxyCert: westProxy.CertPEM},
	}}
	type row struct {
		FP    string
		Kinds []string
		Where []string
	}
	rows := func(us []certUse) []row {
		var out []row
		for _, u := range us {
			out = append(out, row{u.cert.Fingerprint, u.kinds, u.where})
		}
		return out
	}
	tests := []struct {
		name    string
		cluster string
		db      int
		want    []row
	}{
		{name: "the whole fleet, each certificate once, soonest expiry first", want: []row{
			{client.Cert.Fingerprint, []string{CertTrusted}, []string{"east/1 trusts it"}},
			{westSyncer.Cert.Fingerprint, []string{CertSyncer, CertTrusted}, []string{"west presents it as syncer certificate", "east/1 trusts it", "east/2 trusts it"}},
			{eastSyncer.Cert.Fingerprint, []string{CertSyncer}, []string{"east presents it as syncer certificate"}},
			{eastProxy.Cert.Fingerprint, []string{CertProxy}, []string{"east presents it as proxy certificate"}},
			{westProxy.Cert.Fingerprint, []string{CertProxy}, []string{"west presents it as proxy certificate"}},
		}},
		{name: "one database of one cluster", cluster: "east", db: 2, want: []row{
			{westSyncer.Cert.Fingerprint, []string{CertTrusted}, []string{"east/2 trusts it"}},
			{eastSyncer.Cert.Fingerprint, []string{CertSyncer}, []string{"east presents it as syncer certificate"}},
			{eastProxy.Cert.Fingerprint, []string{CertProxy}, []string{"east presents it as proxy certificate"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rows(collectCerts(fleet, tt.cluster, tt.db, newCertMemo()))
			byFP := func(rs []row) map[string]row {
				m := map[string]row{}
				for _, r := range rs {
					m[r.FP] = r
				}
				return m
			}
			if diff := cmp.Diff(byFP(tt.want), byFP(got)); diff != "" || len(got) != len(tt.want) {
				t.Errorf("certificates (-want +got):\n%s", diff)
			}
			// Soonest expiry first: the client certificate, then west's syncer certificate.
			if len(got) > 1 && got[0].FP != tt.want[0].FP {
				t.Errorf("first certificate %s, want %s (the one expiring soonest)", got[0].FP, tt.want[0].FP)
			}
		})
	}
}

func TestOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Options) bool
		wantErr string
	}{
		{name: "defaults", env: nil, check: func(o Options) bool {
			return o.Concurrency == 16 && o.PruneAfter == 0 && cmp.Equal(o.Thresholds, []int{30, 14, 7, 1}) && o.StopMargin == time.Minute
		}},
		{name: "every knob", env: map[string]string{EnvConcurrency: "3", EnvClusterRate: "5.5", EnvClusterInFlight: "2", EnvCallTimeout: "10s",
			EnvStopMargin: "2m", EnvThresholds: "7, 60,1,7"}, check: func(o Options) bool {
			return o.Concurrency == 3 && o.ClusterRate == 5.5 && o.ClusterBurst == 5 && o.ClusterInFlight == 2 && o.CallTimeout == 10*time.Second &&
				o.StopMargin == 2*time.Minute && cmp.Equal(o.Thresholds, []int{60, 7, 1})
		}},
		{name: "a concurrency of zero", env: map[string]string{EnvConcurrency: "0"}, wantErr: EnvConcurrency},
		{name: "a rate that is not a number", env: map[string]string{EnvClusterRate: "fast"}, wantErr: EnvClusterRate},
		{name: "a duration without a unit", env: map[string]string{EnvCallTimeout: "30"}, wantErr: EnvCallTimeout},
		{name: "a stop margin too short to be meant", env: map[string]string{EnvStopMargin: "5ms"}, wantErr: EnvStopMargin},
		{name: "a threshold of zero days", env: map[string]string{EnvThresholds: "30,0"}, wantErr: EnvThresholds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := OptionsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

// fakeAPI is a cluster API whose calls are func fields: for the limiter's unit tests.
type fakeAPI struct {
	getCluster func(ctx context.Context) (reapi.Cluster, error)
	inflight   atomic.Int32
	peak       atomic.Int32
}

func (f *fakeAPI) Name() string { return "fake" }
func (f *fakeAPI) ListDBs(context.Context, ...string) ([]reapi.DB, error) {
	return nil, nil
}
func (f *fakeAPI) GetDB(context.Context, int, ...string) (reapi.DB, error) { return reapi.DB{}, nil }
func (f *fakeAPI) UpdateDB(context.Context, int, reapi.DBUpdate, bool) (reapi.DB, error) {
	return reapi.DB{}, nil
}
func (f *fakeAPI) WaitForDB(context.Context, int, string, time.Duration) (reapi.DB, error) {
	return reapi.DB{}, nil
}
func (f *fakeAPI) GetCluster(ctx context.Context) (reapi.Cluster, error) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return f.getCluster(ctx)
}

type fakeRegistry struct{ api *fakeAPI }

func (r fakeRegistry) ClusterNames(context.Context) ([]string, error) { return []string{"fake"}, nil }
func (r fakeRegistry) Client(context.Context, string) (reconcile.ClusterAPI, error) {
	return r.api, nil
}

func limited(t *testing.T, api *fakeAPI, o Options) reconcile.ClusterAPI {
	t.Helper()
	c, err := newLimitedRegistry(fakeRegistry{api}, o.withDefaults()).Client(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLimitedAPIBreaker(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantOpen bool
	}{
		{"503s open the breaker", &reapi.Error{StatusCode: 503, Code: "node_not_responding"}, true},
		{"network errors open the breaker", errors.New("dial tcp: connection refused"), true},
		{"a 401 says nothing about the cluster's health", &reapi.Error{StatusCode: 401, Code: "unauthorized"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			api := &fakeAPI{getCluster: func(context.Context) (reapi.Cluster, error) { calls++; return reapi.Cluster{}, tt.err }}
			c := limited(t, api, Options{BreakerFailures: 3})
			for range 5 {
				_, _ = c.GetCluster(context.Background())
			}
			wantCalls := 5
			if tt.wantOpen {
				wantCalls = 3
			}
			if calls != wantCalls {
				t.Errorf("%d calls reached the cluster, want %d", calls, wantCalls)
			}
			_, err := c.GetCluster(context.Background())
			if got := errors.Is(err, errBreakerOpen); got != tt.wantOpen {
				t.Errorf("breaker open = %v (%v), want %v", got, err, tt.wantOpen)
			}
		})
	}
}

func TestLimitedAPIBoundsEachCallInTime(t *testing.T) {
	api := &fakeAPI{getCluster: func(ctx context.Context) (reapi.Cluster, error) {
		<-ctx.Done() // a cluster that never answers
		return reapi.Cluster{}, ctx.Err()
	}}
	c := limited(t, api, Options{CallTimeout: 50 * time.Millisecond})
	_, err := c.GetCluster(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the call's own deadline", err)
	}
}

func TestLimitedAPIBoundsCallsInFlight(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(2)
	api := &fakeAPI{getCluster: func(context.Context) (reapi.Cluster, error) {
		arrived.Done()
		<-release
		return reapi.Cluster{}, nil
	}}
	c := limited(t, api, Options{ClusterInFlight: 2, CallTimeout: time.Minute})
	var done sync.WaitGroup
	for range 6 {
		done.Add(1)
		go func() {
			defer done.Done()
			_, _ = c.GetCluster(context.Background())
		}()
	}
	arrived.Wait() // two calls are in; the others must wait for a slot
	if n := api.inflight.Load(); n != 2 {
		t.Errorf("%d calls in flight, want 2", n)
	}
	arrived.Add(4) // the four waiting calls arrive as slots free up
	close(release)
	done.Wait()
	if p := api.peak.Load(); p != 2 {
		t.Errorf("peak of %d calls in flight, want 2", p)
	}
}
