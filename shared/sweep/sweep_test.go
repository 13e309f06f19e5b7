package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/infra/simulator"
	"github.com/replica-tls/replica-tls/infra/testkit"
	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

// assertPairSecured checks both sides of east/i -> west/i.
func assertPairSecured(t *testing.T, f *fixture, i int) {
	t.Helper()
	westSyncer, _ := f.st.Sim.Cluster("west").SyncerCert()
	eastProxy, _ := f.st.Sim.Cluster("east").ProxyCert()
	src, dst := testkit.ReadDB(t, f.st, "east", i), testkit.ReadDB(t, f.st, "west", i)
	if src.TLSMode != "replica_ssl" || src.ClientAuth != "enabled" || !slices.Contains(trusts(t, src), fingerprint(t, westSyncer)) {
		t.Errorf("east/%d: tls_mode %s, client auth %s, trusts west's syncer certificate: %v", i, src.TLSMode, src.ClientAuth,
			slices.Contains(trusts(t, src), fingerprint(t, westSyncer)))
	}
	if len(dst.ReplicaSources) != 1 {
		t.Fatalf("west/%d has %d replica sources", i, len(dst.ReplicaSources))
	}
	rs := dst.ReplicaSources[0]
	if !rs.Encryption || rs.ServerCert == "" || fingerprint(t, rs.ServerCert) != fingerprint(t, eastProxy) {
		t.Errorf("west/%d entry: encryption %v, server certificate is east's proxy certificate: %v", i, rs.Encryption,
			rs.ServerCert != "" && fingerprint(t, rs.ServerCert) == fingerprint(t, eastProxy))
	}
}

func assertUnsecured(t *testing.T, f *fixture, i int) {
	t.Helper()
	src, dst := testkit.ReadDB(t, f.st, "east", i), testkit.ReadDB(t, f.st, "west", i)
	if src.TLSMode != "disabled" || len(src.ClientCerts) != 0 || dst.ReplicaSources[0].Encryption {
		t.Errorf("east/%d -> west/%d was touched: tls_mode %s, %d trusted, encryption %v", i, i, src.TLSMode, len(src.ClientCerts), dst.ReplicaSources[0].Encryption)
	}
}

func TestSweepSecuresUnannouncedLinksAndIsCheapOnceConverged(t *testing.T) {
	f := newFixture(t, pairs(3), sweep.Options{})

	// A sweep narrowed to one database touches that link only.
	rep, err := f.sweep(sweep.Request{Cluster: "west", Database: 1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sweep.LinkCounts{Seen: 1, Repaired: 1, New: 1}, rep.Links); diff != "" {
		t.Errorf("narrowed sweep links (-want +got):\n%s", diff)
	}
	assertPairSecured(t, f, 1)
	assertUnsecured(t, f, 2)
	assertUnsecured(t, f, 3)
	f.events()

	// The full sweep discovers the two links nobody announced and secures them.
	rep, err = f.sweep(sweep.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sweep.LinkCounts{Seen: 3, InSync: 1, Repaired: 2, New: 2}, rep.Links); diff != "" {
		t.Errorf("full sweep links (-want +got):\n%s", diff)
	}
	for i := 1; i <= 3; i++ {
		assertPairSecured(t, f, i)
	}
	if rep.Drift != 0 || rep.Outcome != audit.Succeeded || rep.StoppedEarly {
		t.Errorf("drift %d, outcome %s, stopped early %v; want 0, succeeded, false", rep.Drift, rep.Outcome, rep.StoppedEarly)
	}
	evs := f.events()
	if n := len(ofType(evs, audit.DetailDrift)); n != 0 {
		t.Errorf("%d drift events for links that were never secured, want none", n)
	}
	sums := ofType(evs, audit.DetailSweep)
	if len(sums) != 1 || sums[0].Outcome != audit.Succeeded || sums[0].Details["links_newly_secured"] != float64(2) {
		t.Errorf("summary events %+v, want one, succeeded, 2 links newly secured", sums)
	}

	// Converged: the snapshot's two reads per cluster, and nothing else.
	f.resetCalls()
	rep, err = f.sweep(sweep.Request{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"east", "west"} {
		if calls := f.st.Sim.Cluster(c).Calls(); testkit.Calls(f.st, c) != 2 || calls["GET /v1/cluster"] != 1 || calls["GET /v1/bdbs"] != 1 {
			t.Errorf("%s: converged sweep made calls %v, want one GET /v1/cluster and one GET /v1/bdbs", c, calls)
		}
	}
	if rep.Calls != 4 || rep.Writes != 0 || rep.Links.InSync != 3 {
		t.Errorf("report: %d calls, %d writes, %d in sync; want 4, 0, 3", rep.Calls, rep.Writes, rep.Links.InSync)
	}
	f.events()
}

func TestSweepConvergedFleetCostsTwoReadsPerCluster(t *testing.T) {
	// Small: every audit event goes through moto's EventBridge to an SQS tap, about 0.3 s each here.
	f := newFixture(t, ring(3, 2), sweep.Options{Concurrency: 4})
	rep, err := f.sweep(sweep.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Links.Seen != 6 || rep.Links.Repaired != 6 {
		t.Fatalf("first sweep: %+v, want all 6 links secured", rep.Links)
	}
	f.events()
	f.resetCalls()
	rep, err = f.sweep(sweep.Request{})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range f.st.Sim.Clusters() {
		n := testkit.Calls(f.st, c.Name)
		total += n
		if n != 2 {
			t.Errorf("%s: %d calls on a converged fleet, want 2 (GET /v1/cluster, GET /v1/bdbs?fields=...)", c.Name, n)
		}
	}
	if f.writes() != 0 || rep.Writes != 0 || rep.Links.InSync != 6 {
		t.Errorf("converged sweep: %d writes (report %d), %d links in sync; want 0, 0, 6", f.writes(), rep.Writes, rep.Links.InSync)
	}
	t.Logf("converged fleet of 12 databases: %d cluster API calls (%.2f per database)", total, float64(total)/12)
	f.events()
}

// drift turns TLS off on east/1's source, removes the trusted certificate from east/2, and takes
// the server certificate off west/3's entry, the way someone in the UI would.
func drift(t *testing.T, f *fixture) {
	t.Helper()
	east, west := f.st.Sim.Cluster("east"), f.st.Sim.Cluster("west")
	if err := east.MutateDB(1, func(c *simulator.DBConfig) { c.TLSMode = "disabled" }); err != nil {
		t.Fatal(err)
	}
	if err := east.MutateDB(2, func(c *simulator.DBConfig) { c.AuthenticationSSLClientCerts = nil }); err != nil {
		t.Fatal(err)
	}
	if err := west.MutateDB(3, func(c *simulator.DBConfig) { c.ReplicaSources[0].ServerCert = "" }); err != nil {
		t.Fatal(err)
	}
}

func TestSweepReportsAndRepairsDriftOnBothSides(t *testing.T) {
	f := newFixture(t, pairs(4), sweep.Options{})
	if _, err := f.sweep(sweep.Request{}); err != nil {
		t.Fatal(err)
	}
	f.events()
	drift(t, f)
	before := map[string]testkit.DB{}
	for _, ref := range []struct {
		c string
		i int
	}{{"east", 1}, {"east", 2}, {"west", 3}} {
		before[fmt.Sprintf("%s/%d", ref.c, ref.i)] = testkit.ReadDB(t, f.st, ref.c, ref.i)
	}

	type driftSeen struct {
		Side, Where string
		Outcome     audit.Outcome
	}
	seen := func(evs []audit.Event) []driftSeen {
		var out []driftSeen
		for _, e := range evs {
			out = append(out, driftSeen{Side: fmt.Sprint(e.Details["side"]), Where: fmt.Sprintf("%s/%d", e.Cluster, e.Database), Outcome: e.Outcome})
		}
		slices.SortFunc(out, func(a, b driftSeen) int { return strings.Compare(a.Where, b.Where) })
		return out
	}

	t.Run("dry run reports the drift and changes nothing", func(t *testing.T) {
		f.resetCalls()
		rep, err := f.sweep(sweep.Request{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Drift != 3 || rep.Links.Planned != 3 || rep.Links.InSync != 1 || rep.Writes != 0 || f.writes() != 0 {
			t.Errorf("dry run: drift %d, planned %d, in sync %d, writes %d (clusters %d); want 3, 3, 1, 0, 0",
				rep.Drift, rep.Links.Planned, rep.Links.InSync, rep.Writes, f.writes())
		}
		for where, db := range before {
			c, uid, _ := strings.Cut(where, "/")
			var i int
			fmt.Sscan(uid, &i)
			if diff := cmp.Diff(db, testkit.ReadDB(t, f.st, c, i)); diff != "" {
				t.Errorf("dry run changed %s (-before +after):\n%s", where, diff)
			}
		}
		evs := f.events()
		want := []driftSeen{{"source", "east/1", audit.Planned}, {"source", "east/2", audit.Planned}, {"destination", "west/3", audit.Planned}}
		if diff := cmp.Diff(want, seen(ofType(evs, audit.DetailDrift))); diff != "" {
			t.Errorf("drift events (-want +got):\n%s", diff)
		}
		for _, e := range evs {
			if !e.Event.DryRun {
				t.Errorf("event %s %s of a dry run is not marked dry_run", e.Event.Step, e.Event.Outcome)
			}
		}
	})

	t.Run("the sweep repairs it and says what changed", func(t *testing.T) {
		rep, err := f.sweep(sweep.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Drift != 3 || rep.Links.Repaired != 3 || rep.Links.New != 0 || rep.Links.InSync != 1 {
			t.Errorf("drift %d, repaired %d, newly secured %d, in sync %d; want 3, 3, 0, 1", rep.Drift, rep.Links.Repaired, rep.Links.New, rep.Links.InSync)
		}
		for i := 1; i <= 4; i++ {
			assertPairSecured(t, f, i)
		}
		evs := ofType(f.events(), audit.DetailDrift)
		want := []driftSeen{{"source", "east/1", audit.Succeeded}, {"source", "east/2", audit.Succeeded}, {"destination", "west/3", audit.Succeeded}}
		if diff := cmp.Diff(want, seen(evs)); diff != "" {
			t.Errorf("drift events (-want +got):\n%s", diff)
		}
		for _, e := range evs {
			what := fmt.Sprint(e.Details["drift"])
			switch fmt.Sprintf("%s/%d", e.Cluster, e.Database) {
			case "east/1":
				if e.Before == nil || e.Before.TLSMode != "disabled" || e.After == nil || e.After.TLSMode != "replica_ssl" || !strings.Contains(what, "TLS was turned off") {
					t.Errorf("east/1 drift event: before %+v, after %+v, drift %s", e.Before, e.After, what)
				}
			case "east/2":
				if e.Before == nil || len(e.Before.TrustedCerts) != 0 || e.After == nil || len(e.After.TrustedCerts) != 1 || !strings.Contains(what, "no longer trusted") {
					t.Errorf("east/2 drift event: before %+v, after %+v, drift %s", e.Before, e.After, what)
				}
			case "west/3":
				if e.Before == nil || e.Before.ServerCert != nil || e.After == nil || e.After.ServerCert == nil || !strings.Contains(what, "lost its server certificate") {
					t.Errorf("west/3 drift event: before %+v, after %+v, drift %s", e.Before, e.After, what)
				}
			}
			if len(e.Changes) == 0 || e.Link == nil {
				t.Errorf("drift event on %s/%d names no change or no link", e.Cluster, e.Database)
			}
		}
	})
}

func TestSweepFailingClustersDoNotStopTheOthers(t *testing.T) {
	f := newFixture(t, pairs(1, "north", "south", "central"), sweep.Options{CallTimeout: 2 * time.Second})
	ctx := context.Background()
	// north: a wrong password in its API secret (401); south: nothing listens where it is registered;
	// central: every call answers 503.
	for _, c := range f.st.Sim.Clusters() {
		reg := secretstore.ClusterAPI{Name: c.Name, URL: c.URL, Username: c.AdminUser, Password: c.AdminPassword, CACert: c.APICertPEM}
		switch c.Name {
		case "north":
			reg.Password = "not-the-password"
		case "south":
			reg.URL = fmt.Sprintf("https://127.0.0.1:%d", closedPort(t))
		default:
			continue
		}
		if err := f.st.Store.PutClusterAPI(ctx, reg); err != nil {
			t.Fatal(err)
		}
	}
	f.st.Sim.Cluster("central").SetErrorRate(simulator.AnyRoute, 1, 503)

	rep, err := f.sweep(sweep.Request{})
	if err != nil {
		t.Fatalf("failing clusters must not fail the sweep: %v", err)
	}
	assertPairSecured(t, f, 1)
	codes := map[string]string{}
	for _, cf := range rep.ClustersFailed {
		codes[cf.Cluster] = cf.Code
	}
	want := map[string]string{"central": "node_not_responding", "north": "unauthorized", "south": "unreachable"}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("failed clusters (-want +got):\n%s\nreport: %+v", diff, rep.ClustersFailed)
	}
	if rep.Links.Repaired != 1 || rep.Outcome != audit.Failed || rep.Clusters != 5 {
		t.Errorf("repaired %d, outcome %s, clusters %d; want 1, failed, 5", rep.Links.Repaired, rep.Outcome, rep.Clusters)
	}
	evs := f.events()
	var failed []string
	for _, e := range evs {
		if e.Event.Step == sweep.StepLoadCluster && e.Event.Outcome == audit.Failed && e.Event.Error != nil {
			failed = append(failed, e.Event.Cluster+":"+e.Event.Error.Code)
		}
	}
	slices.Sort(failed)
	if diff := cmp.Diff([]string{"central:node_not_responding", "north:unauthorized", "south:unreachable"}, failed); diff != "" {
		t.Errorf("load-cluster failure events (-want +got):\n%s", diff)
	}
	sums := ofType(evs, audit.DetailSweep)
	if len(sums) != 1 || sums[0].Outcome != audit.Failed || sums[0].Details["clusters_failed"] != float64(3) ||
		fmt.Sprint(sums[0].Details["failed_clusters"]) != "[central north south]" {
		t.Errorf("summary %+v, want failed with 3 failed clusters named", sums)
	}
}

func TestSweepStopsCleanlyWhenTimeRunsShort(t *testing.T) {
	t.Run("less than the stop margin: the links are left and reported", func(t *testing.T) {
		f := newFixture(t, pairs(3), sweep.Options{StopMargin: time.Minute, Reserve: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rep, err := f.sweepCtx(ctx, sweep.Request{})
		if err != nil {
			t.Fatalf("a sweep that runs out of time must stop cleanly: %v", err)
		}
		if !rep.StoppedEarly || rep.Links.Skipped != 3 || f.writes() != 0 {
			t.Errorf("stopped early %v, skipped %d, writes %d; want true, 3, 0", rep.StoppedEarly, rep.Links.Skipped, f.writes())
		}
		if diff := cmp.Diff([]string{"west/1 <- east/1", "west/2 <- east/2", "west/3 <- east/3"}, rep.Left); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
		sums := ofType(f.events(), audit.DetailSweep)
		if len(sums) != 1 || sums[0].Error == nil || sums[0].Error.Code != "stopped_early" || sums[0].Details["links_skipped"] != float64(3) {
			t.Errorf("summary %+v, want one saying 3 links were left", sums)
		}
		for i := 1; i <= 3; i++ {
			assertUnsecured(t, f, i)
		}
	})
	t.Run("less than the reserve: nothing is read, the summary still recorded", func(t *testing.T) {
		f := newFixture(t, pairs(1), sweep.Options{Reserve: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rep, err := f.sweepCtx(ctx, sweep.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.StoppedEarly || testkit.Calls(f.st, "east")+testkit.Calls(f.st, "west") != 0 {
			t.Errorf("stopped early %v, cluster calls %d; want true, 0", rep.StoppedEarly, testkit.Calls(f.st, "east")+testkit.Calls(f.st, "west"))
		}
		if sums := ofType(f.events(), audit.DetailSweep); len(sums) != 1 || sums[0].Error == nil || sums[0].Error.Code != "stopped_early" {
			t.Errorf("summary %+v, want one saying the sweep stopped early", sums)
		}
	})
}

func TestSweepRejectsUnknownTargets(t *testing.T) {
	f := newFixture(t, pairs(1), sweep.Options{})
	tests := []struct {
		name string
		req  sweep.Request
		code string
	}{
		{"an unregistered cluster", sweep.Request{Cluster: "nowhere"}, reconcile.CodeUnknownCluster},
		{"a database the cluster does not have", sweep.Request{Cluster: "west", Database: 99}, reconcile.CodeUnknownDatabase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.resetCalls()
			_, err := f.sweep(tt.req)
			var rej *reconcile.RejectError
			if !errors.As(err, &rej) || rej.Code != tt.code {
				t.Fatalf("error %v, want a %s rejection", err, tt.code)
			}
			if f.writes() != 0 {
				t.Error("a rejected sweep changed something")
			}
			evs := f.events()
			if !testkit.Has(evs, sweep.StepSelect, audit.Rejected) || len(ofType(evs, audit.DetailSweep)) != 0 {
				t.Errorf("events %v, want the rejection and no summary", testkit.Outcomes(evs))
			}
		})
	}
	assertUnsecured(t, f, 1)
}

func TestSweepExpiryNoticesOncePerThreshold(t *testing.T) {
	f := newFixture(t, pairs(1), sweep.Options{})
	start := f.clock.Now()
	westSyncer, _ := f.st.Sim.Cluster("west").SyncerCert()
	ws, err := certs.ParseOne(westSyncer)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := ws.X509.NotAfter // the simulator made all four certificates at once, valid a year

	steps := []struct {
		name   string
		at     time.Time
		dryRun bool
		want   int // notices sent (or, in a dry run, that would be)
		stage  string
	}{
		{"a year left: nothing", start, false, 0, ""},
		{"29 days left, dry run: would notify each of the 4 certificates", notAfter.Add(-29 * 24 * time.Hour), true, 4, "30d"},
		{"29 days left: the 30-day notices", notAfter.Add(-29 * 24 * time.Hour), false, 4, "30d"},
		{"28 days left: not again", notAfter.Add(-28 * 24 * time.Hour), false, 0, ""},
		{"13 days left: the 14-day notices", notAfter.Add(-13 * 24 * time.Hour), false, 4, "14d"},
		{"2 days left: the 7-day notices only", notAfter.Add(-2 * 24 * time.Hour), false, 4, "7d"},
		{"12 hours left: the 1-day notices", notAfter.Add(-12 * time.Hour), false, 4, "1d"},
		{"expired: reported as expired", notAfter.Add(time.Hour), false, 4, "expired"},
		{"still expired a day later: not again", notAfter.Add(25 * time.Hour), false, 0, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.clock.Set(s.at)
			rep, err := f.sweep(sweep.Request{DryRun: s.dryRun})
			if err != nil {
				t.Fatal(err)
			}
			evs := ofType(f.events(), audit.DetailExpiring)
			if len(evs) != s.want || rep.Certificates.Notified != s.want {
				t.Fatalf("%d notice events, report says %d sent; want %d", len(evs), rep.Certificates.Notified, s.want)
			}
			var kinds []string
			for _, e := range evs {
				if e.Details["stage"] != s.stage || e.Certificate == nil || e.DryRun != s.dryRun {
					t.Errorf("notice %+v: want stage %s, a certificate, dry run %v", e.Details, s.stage, s.dryRun)
				}
				wantOutcome := audit.Succeeded
				if s.dryRun {
					wantOutcome = audit.Planned
				}
				if e.Outcome != wantOutcome {
					t.Errorf("notice outcome %s, want %s", e.Outcome, wantOutcome)
				}
				kinds = append(kinds, fmt.Sprint(e.Details["kinds"]))
			}
			if s.want > 0 {
				slices.Sort(kinds)
				// west's syncer certificate is presented by west and trusted by east/1 since the first sweep.
				if diff := cmp.Diff([]string{"[proxy]", "[proxy]", "[syncer trusted]", "[syncer]"}, kinds); diff != "" {
					t.Errorf("notice kinds (-want +got):\n%s", diff)
				}
			}
			if s.at != start && (rep.Certificates.Expiring+rep.Certificates.Expired != 4 || len(rep.Expiring) != 4) {
				t.Errorf("report: %d expiring, %d expired, %d listed; want the 4 certificates", rep.Certificates.Expiring, rep.Certificates.Expired, len(rep.Expiring))
			}
		})
	}
}

func TestSweepPrunesSupersededSyncerCertificatesOnlyWhenSafe(t *testing.T) {
	f := newFixture(t, pairs(1, "north"), sweep.Options{})
	f.app.Config.TrustGrace = 7 * 24 * time.Hour // TRUST_GRACE_DAYS=7, the template's default
	ctx := context.Background()
	if _, err := f.sweep(sweep.Request{}); err != nil {
		t.Fatal(err)
	}
	oldCert, _ := f.st.Sim.Cluster("west").SyncerCert()
	oldFP := fingerprint(t, oldCert)

	// West's syncer certificate is rotated: the new one becomes AWSCURRENT, the old one AWSPREVIOUS.
	kp, err := certs.Generate(certs.Profile{FQDN: "west.redis.local", Kind: certs.KindSyncer, NotBefore: time.Now(), KeyType: certs.ECDSAP256})
	if err != nil {
		t.Fatal(err)
	}
	newFP := kp.Cert.Fingerprint
	if _, err := f.st.Store.PutCert(ctx, "west", secretstore.Syncer, secretstore.PutCert{Certificate: kp.CertPEM, PrivateKey: kp.KeyPEM}); err != nil {
		t.Fatal(err)
	}
	f.app.Store.Invalidate() // as a new container, or 30 s later, would see it
	north := f.st.Sim.Clusters()[2]
	if north.Name != "north" {
		t.Fatalf("third cluster is %s, want north", north.Name)
	}
	register := func(password string) {
		t.Helper()
		if err := f.st.Store.PutClusterAPI(ctx, secretstore.ClusterAPI{Name: "north", URL: north.URL, Username: north.AdminUser,
			Password: password, CACert: north.APICertPEM}); err != nil {
			t.Fatal(err)
		}
		f.app.Store.Invalidate() // the function's cache would hold the old secret for a while
	}
	steps := []struct {
		name    string
		prepare func()
		at      time.Time
		want    []string // fingerprints east/1 trusts afterwards
	}{
		{"trust first: the new certificate is added, the old one kept", func() {}, time.Now(), []string{newFP, oldFP}},
		{"past the grace period while west still presents the old certificate: kept", func() {},
			time.Now().Add(8 * 24 * time.Hour), []string{newFP, oldFP}},
		{"west presents the new certificate, within the grace period: kept", func() {
			if err := f.st.Sim.Cluster("west").SetSyncerCert(kp.CertPEM, kp.KeyPEM); err != nil {
				t.Fatal(err)
			}
		}, time.Now().Add(24 * time.Hour), []string{newFP, oldFP}},
		{"past the grace period but a registered cluster cannot be read: kept", func() { register("not-the-password") },
			time.Now().Add(8 * 24 * time.Hour), []string{newFP, oldFP}},
		{"past the grace period, every cluster read, nobody presents it: pruned", func() { register(north.AdminPassword) },
			time.Now().Add(8 * 24 * time.Hour), []string{newFP}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.prepare()
			f.clock.Set(s.at)
			rep, err := f.sweep(sweep.Request{})
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(s.want)
			slices.Sort(want)
			if diff := cmp.Diff(want, trusts(t, testkit.ReadDB(t, f.st, "east", 1))); diff != "" {
				t.Errorf("east/1 trusts (-want +got):\n%s\nreport links %+v, warnings %v", diff, rep.Links, rep.Warnings)
			}
			f.events()
		})
	}
}
