package sweep

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

func TestDetectDrift(t *testing.T) {
	westSyncer := &certs.Summary{Fingerprint: strings.Repeat("ab", 32), Subject: "CN=west.redis.local,OU=syncer"}
	trusted := map[string]bool{westSyncer.Fingerprint: true}
	securedSource := reapi.DB{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled}
	securedEntry := reapi.ReplicaSource{UID: 1, Encryption: true, ServerCert: "PEM"}
	tests := []struct {
		name       string
		state      linkState
		src, dst   []string // substrings expected, in order
		noneAtAll  bool
		wantSecure bool
	}{
		{
			name:      "a link never secured is not drift: the sweep secures it",
			state:     linkState{Source: reapi.DB{TLSMode: reapi.TLSDisabled}, Entry: reapi.ReplicaSource{}, DestSyncer: westSyncer, SourceTrusts: map[string]bool{}, ClientAuth: true},
			noneAtAll: true,
		},
		{
			name:      "a new link to a source already secured for another cluster is not drift",
			state:     linkState{Source: securedSource, Entry: reapi.ReplicaSource{}, DestSyncer: westSyncer, SourceTrusts: map[string]bool{"other": true}, ClientAuth: true},
			noneAtAll: true,
		},
		{
			name:       "a secured link is not drift",
			state:      linkState{Source: securedSource, Entry: securedEntry, DestSyncer: westSyncer, SourceTrusts: trusted, ClientAuth: true},
			noneAtAll:  true,
			wantSecure: true,
		},
		{
			name:       "TLS turned off on the source",
			state:      linkState{Source: reapi.DB{TLSMode: reapi.TLSDisabled, EnforceClientAuthentication: reapi.Enabled}, Entry: securedEntry, DestSyncer: westSyncer, SourceTrusts: trusted, ClientAuth: true},
			src:        []string{"TLS was turned off"},
			wantSecure: true,
		},
		{
			name:       "client authentication turned off, and the trusted certificate removed",
			state:      linkState{Source: reapi.DB{TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Disabled}, Entry: securedEntry, DestSyncer: westSyncer, SourceTrusts: map[string]bool{}, ClientAuth: true},
			src:        []string{"client authentication was turned off", "no longer trusted"},
			wantSecure: true,
		},
		{
			name:       "client authentication off is not drift when the policy says so",
			state:      linkState{Source: reapi.DB{TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Disabled}, Entry: securedEntry, DestSyncer: westSyncer, SourceTrusts: trusted, ClientAuth: false},
			noneAtAll:  true,
			wantSecure: true,
		},
		{
			name:       "the destination lost its server certificate",
			state:      linkState{Source: securedSource, Entry: reapi.ReplicaSource{Encryption: true}, DestSyncer: westSyncer, SourceTrusts: trusted, ClientAuth: true},
			dst:        []string{"lost its server certificate"},
			wantSecure: true,
		},
		{
			name:       "encryption turned off on the destination",
			state:      linkState{Source: securedSource, Entry: reapi.ReplicaSource{ServerCert: "PEM"}, DestSyncer: westSyncer, SourceTrusts: trusted, ClientAuth: true},
			dst:        []string{"encryption was turned off"},
			wantSecure: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.state.secured(); got != (tt.wantSecure || !tt.noneAtAll) {
				t.Errorf("secured() = %v", got)
			}
			src, dst := detectDrift(tt.state)
			if tt.noneAtAll {
				if len(src)+len(dst) != 0 {
					t.Errorf("drift %q %q, want none", src, dst)
				}
				return
			}
			check := func(side string, got, want []string) {
				if len(got) != len(want) {
					t.Errorf("%s drift %q, want %d finding(s) %q", side, got, len(want), want)
					return
				}
				for i := range want {
					if !strings.Contains(got[i], want[i]) {
						t.Errorf("%s finding %d = %q, want it to say %q", side, i, got[i], want[i])
					}
				}
			}
			check("source", src, tt.src)
			check("destination", dst, tt.dst)
		})
	}
}

func TestDueStages(t *testing.T) {
	now := testTime()
	day := 24 * 60 * 60 * int64(1e9)
	thresholds := []int{30, 14, 7, 1}
	tests := []struct {
		name    string
		left    int64 // nanoseconds
		want    stage
		wantDue bool
	}{
		{"a year left", 365 * day, stage{DaysLeft: 365}, false},
		{"just outside 30 days", 30*day + 1, stage{DaysLeft: 30}, false},
		{"exactly 30 days", 30 * day, stage{Threshold: 30, DaysLeft: 30}, true},
		{"20 days: still the 30-day stage", 20 * day, stage{Threshold: 30, DaysLeft: 20}, true},
		{"5 days: the 7-day stage, not 30 or 14", 5 * day, stage{Threshold: 7, DaysLeft: 5}, true},
		{"an hour: the 1-day stage", day / 24, stage{Threshold: 1, DaysLeft: 0}, true},
		{"expired", -1, stage{Expired: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := due(now.Add(durationOf(tt.left)), now, thresholds)
			if ok != tt.wantDue {
				t.Fatalf("due = %v, want %v", ok, tt.wantDue)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stage (-want +got):\n%s", diff)
			}
		})
	}
	if k := (stage{Threshold: 14}).key("fp"); k != "fp/14d" {
		t.Errorf("key = %q", k)
	}
	if k := (stage{Expired: true}).key("fp"); k != "fp/expired" {
		t.Errorf("key = %q", k)
	}
}

func TestLinkStateOfUsesWhatTheDestinationPresents(t *testing.T) {
	now := testTime()
	westSyncer := genCert(t, "west.example.com", certs.KindSyncer, now)
	own := genCert(t, "app.example.com", certs.KindSyncer, now)
	link := reconcile.Link{Dest: reconcile.LinkEnd{Cluster: "west", DB: 1}, Source: reconcile.LinkEnd{Cluster: "east", DB: 1}, EntryUID: 7}
	fleetWith := func(entry reapi.ReplicaSource) *reconcile.Fleet {
		return &reconcile.Fleet{Clusters: map[string]*reconcile.ClusterState{
			"east": {Name: "east", DBs: []reapi.DB{{UID: 1, TLSMode: reapi.TLSReplicaSSL, EnforceClientAuthentication: reapi.Enabled,
				AuthenticationSSLClientCerts: []reapi.ClientCert{{ClientCert: westSyncer.CertPEM}}}}},
			"west": {Name: "west", SyncerCert: westSyncer.CertPEM, DBs: []reapi.DB{{UID: 1, ReplicaSources: []reapi.ReplicaSource{entry}}}},
		}}
	}
	tests := []struct {
		name  string
		entry reapi.ReplicaSource
		want  string
	}{
		{"the cluster's syncer certificate", reapi.ReplicaSource{UID: 7, Encryption: true, ServerCert: "x"}, westSyncer.Cert.Fingerprint},
		{"the entry's own client certificate", reapi.ReplicaSource{UID: 7, Encryption: true, ServerCert: "x", ClientCert: own.CertPEM}, own.Cert.Fingerprint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := linkStateOf(fleetWith(tt.entry), link, newCertMemo(), true)
			if !ok || st.DestSyncer == nil || st.DestSyncer.Fingerprint != tt.want {
				t.Fatalf("state %+v (ok %v), want the destination presenting %s", st.DestSyncer, ok, tt.want)
			}
			src, dst := detectDrift(st)
			trusted := tt.want == westSyncer.Cert.Fingerprint
			if trusted != (len(src) == 0) || len(dst) != 0 {
				t.Errorf("drift source %q destination %q: the source trusts what is presented: %v", src, dst, trusted)
			}
		})
	}
}
