package reconcile

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// world is a fake fleet: clusters east (source), west (destination of east/1) and, optionally,
// north (a second destination of east/1), with their certificates in a fake Secrets Manager.
type world struct {
	clusters map[string]*fakeCluster
	reg      *fakeRegistry
	certs    *fakeCerts
	aud      *fakeAuditor
	trace    *traceLog
	c        map[string]testCert
}

const (
	eastURI  = "redis://admin:s3cr3t-pass@redis-12000.east.example.com:12000"
	northURI = "redis://admin:s3cr3t-pass@redis-12000.east.example.com:12000/"
)

func newWorld(t testing.TB, withNorth bool) *world {
	t.Helper()
	w := &world{clusters: map[string]*fakeCluster{}, aud: newAuditor(t), c: map[string]testCert{}, trace: &traceLog{}}
	names := []string{"east", "west"}
	if withNorth {
		names = append(names, "north")
	}
	w.certs = &fakeCerts{syncer: map[string][]CertVersion{}, proxy: map[string]CertVersion{}, clients: map[LinkEnd][]string{}}
	for _, n := range names {
		fqdn := n + ".example.com"
		s, p := syncerCert(t, fqdn), proxyCert(t, fqdn)
		w.c[n+"Syncer"], w.c[n+"Proxy"] = s, p
		w.certs.syncer[n] = []CertVersion{version(n+"-s1", s, StageCurrent)}
		w.certs.proxy[n] = version(n+"-p1", p, StageCurrent)
		w.clusters[n] = &fakeCluster{name: n, fqdn: fqdn, syncer: s.PEM, proxy: p.PEM, trace: w.trace}
	}
	w.clusters["east"].dbs = []reapi.DB{{
		UID: 1, Name: "orders", Status: reapi.DBStatusActive, TLSMode: reapi.TLSDisabled,
		Endpoints: []reapi.Endpoint{{DNSName: "redis-12000.east.example.com", Port: 12000}},
	}}
	w.clusters["west"].dbs = []reapi.DB{{
		UID: 1, Name: "orders-dr", Status: reapi.DBStatusActive, TLSMode: reapi.TLSDisabled,
		ReplicaSources: []reapi.ReplicaSource{{UID: 1, URI: eastURI, Status: reapi.LinkInSync}},
		Endpoints:      []reapi.Endpoint{{DNSName: "redis-12000.west.example.com", Port: 12000}},
	}}
	if withNorth {
		w.clusters["north"].dbs = []reapi.DB{{
			UID: 1, Name: "orders-ro", Status: reapi.DBStatusActive,
			ReplicaSources: []reapi.ReplicaSource{{UID: 4, URI: northURI, Status: reapi.LinkInSync}},
		}}
	}
	w.reg = &fakeRegistry{clusters: w.clusters}
	return w
}

func (w *world) reconciler() *Reconciler {
	return New(Config{Registry: w.reg, Certs: w.certs, Auditor: w.aud, Now: testNow})
}

func (w *world) load(t testing.TB) *Fleet {
	t.Helper()
	f, err := LoadFleet(context.Background(), w.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (w *world) writes() int {
	n := 0
	for _, c := range w.clusters {
		n += c.writes
	}
	return n
}

func (w *world) dryRuns() int {
	n := 0
	for _, c := range w.clusters {
		n += c.dryRuns
	}
	return n
}

func TestLoadFleet(t *testing.T) {
	w := newWorld(t, true)
	w.clusters["north"].failList = &reapi.Error{Method: "GET", Path: "/v1/bdbs", StatusCode: 503, Message: "node not responding"}
	f, err := LoadFleet(context.Background(), w.reg, []string{"west", "east", "north", "west"})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(f.Clusters)); !slices.Equal(got, []string{"east", "west"}) {
		t.Errorf("loaded clusters = %v, want east and west", got)
	}
	var apiErr *reapi.Error
	if !errors.As(f.Errors["north"], &apiErr) || apiErr.StatusCode != 503 {
		t.Errorf("north error = %v, want the 503 kept", f.Errors["north"])
	}
	east := f.Clusters["east"]
	if east.FQDN != "east.example.com" || east.SyncerCert != w.c["eastSyncer"].PEM || east.ProxyCert != w.c["eastProxy"].PEM || len(east.DBs) != 1 {
		t.Errorf("east = %+v", east)
	}
	for _, n := range []string{"east", "west"} {
		c := w.clusters[n]
		if c.calls != 2 {
			t.Errorf("%s: %d API calls, want 2 (cluster + one DB list)", n, c.calls)
		}
		if diff := cmp.Diff([][]string{DBFields()}, c.listFields); diff != "" {
			t.Errorf("%s: ListDBs fields (-want +got):\n%s", n, diff)
		}
		if slices.Contains(c.listFields[0], "authentication_admin_pass") {
			t.Errorf("%s: the admin password was requested", n)
		}
	}
}

func TestLoadFleetUnknownAndFailing(t *testing.T) {
	w := newWorld(t, false)
	w.clusters["west"].failGetCluster = errors.New("dial tcp: connection refused")
	f, err := LoadFleet(context.Background(), w.reg, []string{"east", "west", "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(f.Errors["ghost"], ErrUnknownCluster) {
		t.Errorf("ghost error = %v, want ErrUnknownCluster", f.Errors["ghost"])
	}
	if f.Errors["west"] == nil || f.Clusters["east"] == nil {
		t.Errorf("errors = %v, clusters = %v", f.Errors, slices.Sorted(maps.Keys(f.Clusters)))
	}
	w.reg.namesErr = errors.New("secrets manager unavailable")
	if _, err := LoadFleet(context.Background(), w.reg, nil); err == nil {
		t.Error("LoadFleet without names succeeded although the registry cannot list clusters")
	}
}

func TestLinks(t *testing.T) {
	src := reapi.DB{UID: 1, Endpoints: []reapi.Endpoint{{DNSName: "redis-12000.east.example.com", Port: 12000, Addr: []string{"10.0.0.5"}}}}
	src2 := reapi.DB{UID: 2, Endpoints: []reapi.Endpoint{{DNSName: "redis-13000.east.example.com", Port: 13000}}}
	dup := reapi.DB{UID: 3, Endpoints: []reapi.Endpoint{{DNSName: "other-13000.east.example.com", Port: 13000}}}

	tests := []struct {
		name     string
		eastDBs  []reapi.DB
		uri      string
		failed   bool // a third registered cluster could not be read
		want     LinkEnd
		wantCode string // "-": an error that is not a rejection
	}{
		{name: "an endpoint's exact dns name and port give the source DB", eastDBs: []reapi.DB{src, src2}, uri: "redis://admin:s3cr3t-pass@redis-13000.east.example.com:13000", want: LinkEnd{"east", 2}},
		{name: "host names are compared without case and trailing dot", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@REDIS-12000.East.Example.com.:12000", want: LinkEnd{"east", 1}},
		{name: "another name under the cluster FQDN falls back to the port", eastDBs: []reapi.DB{src, src2}, uri: "redis://admin:s3cr3t-pass@node1.east.example.com:12000", want: LinkEnd{"east", 1}},
		{name: "an IP address matches an endpoint address", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@10.0.0.5:12000", want: LinkEnd{"east", 1}},
		{name: "a password with reserved characters does not confuse parsing", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass/@#?x@redis-12000.east.example.com:12000", want: LinkEnd{"east", 1}},
		{name: "a host under no registered cluster is an unknown source cluster", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@redis-12000.elsewhere.example.org:12000", wantCode: CodeUnknownCluster},
		{name: "a host under no cluster read is a failure, not a rejection, while a registered cluster could not be read", eastDBs: []reapi.DB{src}, failed: true, uri: "redis://admin:s3cr3t-pass@redis-12000.north.example.com:12000", wantCode: "-"},
		{name: "a lookalike domain is not a suffix match", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@redis-12000.notast.example.com:12000", wantCode: CodeUnknownCluster},
		{name: "no database on the port is unresolved", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@x.east.example.com:19999", wantCode: CodeUnresolvedSource},
		{name: "two databases on the port with another name are ambiguous", eastDBs: []reapi.DB{src2, dup}, uri: "redis://admin:s3cr3t-pass@x.east.example.com:13000", wantCode: CodeUnresolvedSource},
		{name: "a uri without scheme is unresolved", eastDBs: []reapi.DB{src}, uri: "admin:s3cr3t-pass@redis-12000.east.example.com:12000", wantCode: CodeUnresolvedSource},
		{name: "a uri without port is unresolved", eastDBs: []reapi.DB{src}, uri: "redis://admin:s3cr3t-pass@redis-12000.east.example.com", wantCode: CodeUnresolvedSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Fleet{Clusters: map[string]*ClusterState{
				"east": {Name: "east", FQDN: "east.example.com", DBs: tt.eastDBs},
				"west": {Name: "west", FQDN: "west.example.com", DBs: []reapi.DB{{UID: 5, ReplicaSources: []reapi.ReplicaSource{{UID: 8, URI: tt.uri}}}}},
			}}
			if tt.failed {
				f.Errors = map[string]error{"north": errors.New("connection refused")}
			}
			links := f.Links()
			if len(links) != 1 {
				t.Fatalf("links = %+v, want one", links)
			}
			l := links[0]
			if l.Dest != (LinkEnd{"west", 5}) || l.EntryUID != 8 || l.Entry != 0 {
				t.Errorf("link destination = %+v", l)
			}
			if tt.wantCode != "" {
				var rej *RejectError
				isReject := errors.As(l.Err, &rej)
				switch {
				case l.Err == nil:
					t.Fatal("link resolved, want an error")
				case tt.wantCode == "-" && isReject:
					t.Fatalf("link error %v is a rejection, want a retryable failure", l.Err)
				case tt.wantCode != "-" && (!isReject || rej.Code != tt.wantCode):
					t.Fatalf("link error = %v, want code %s", l.Err, tt.wantCode)
				}
				assertNoSecret(t, l.Err.Error())
				assertNoSecret(t, l.String())
				return
			}
			if l.Err != nil {
				t.Fatalf("link error = %v", l.Err)
			}
			if l.Source != tt.want {
				t.Errorf("source = %v, want %v", l.Source, tt.want)
			}
			assertNoSecret(t, l.String()+l.Host)
		})
	}
}

func TestDestinationsOf(t *testing.T) {
	w := newWorld(t, true)
	f := w.load(t)
	got := f.DestinationsOf("east", 1)
	want := []LinkEnd{{"north", 1}, {"west", 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("destinations of east/1 (-want +got):\n%s", diff)
	}
	if got := f.DestinationsOf("west", 1); len(got) != 0 {
		t.Errorf("destinations of west/1 = %v, want none", got)
	}
}
