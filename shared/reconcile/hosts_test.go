package reconcile

import (
	"strings"
	"testing"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// TestResolveLinkAddresses: the forms a Replica Of uri takes in the field all resolve to the source
// database, and what cannot be resolved is a clear refusal.
func TestResolveLinkAddresses(t *testing.T) {
	ep := func(dns string, port int, addr ...string) []reapi.Endpoint {
		return []reapi.Endpoint{{DNSName: dns, Port: port, Addr: addr}}
	}
	fleet := func(eastHosts, westHosts map[string]int) *Fleet {
		return &Fleet{Clusters: map[string]*ClusterState{
			"east": {Name: "east", FQDN: "east.example.com", ReplicationHosts: eastHosts, DBs: []reapi.DB{
				{UID: 1, Name: "orders", Endpoints: ep("redis-12000.east.example.com", 12000, "10.0.0.1")},
				{UID: 2, Name: "carts", Endpoints: ep("redis-12001.east.example.com", 12001, "10.0.0.1")},
			}},
			"west": {Name: "west", FQDN: "west.example.com", ReplicationHosts: westHosts, DBs: []reapi.DB{
				{UID: 7, Name: "orders-dr", Endpoints: ep("redis-13000.west.example.com", 13000)},
			}},
		}, Errors: map[string]error{}}
	}
	ingress := map[string]int{"east-ingress.apps.example.org": 0, "orders.apps.example.org": 1}
	tests := []struct {
		name    string
		f       *Fleet
		uri     string
		sni     string
		want    LinkEnd
		wantErr string
	}{
		{name: "endpoint dns_name", f: fleet(nil, nil), uri: "redis://:pw@redis-12001.east.example.com:12001", want: LinkEnd{"east", 2}},
		{name: "another name under the FQDN, by port", f: fleet(nil, nil), uri: "redis://:pw@node1.east.example.com:12000", want: LinkEnd{"east", 1}},
		{name: "endpoint address", f: fleet(nil, nil), uri: "redis://:pw@10.0.0.1:12001", want: LinkEnd{"east", 2}},
		{name: "route host mapped to one database", f: fleet(ingress, nil), uri: "redis://:pw@orders.apps.example.org:443", want: LinkEnd{"east", 1}},
		{name: "shared ingress, SNI names the endpoint", f: fleet(ingress, nil), uri: "redis://:pw@east-ingress.apps.example.org:443",
			sni: "redis-12001.east.example.com", want: LinkEnd{"east", 2}},
		{name: "shared ingress, SNI is a mapped route host", f: fleet(ingress, nil), uri: "redis://:pw@east-ingress.apps.example.org:443",
			sni: "orders.apps.example.org", want: LinkEnd{"east", 1}},
		{name: "shared ingress, port of one database", f: fleet(ingress, nil), uri: "redis://:pw@east-ingress.apps.example.org:12001", want: LinkEnd{"east", 2}},
		{name: "shared ingress without SNI on a shared port", f: fleet(ingress, nil), uri: "redis://:pw@east-ingress.apps.example.org:443",
			wantErr: "no database endpoint on port 443"},
		{name: "unmapped ingress host", f: fleet(nil, nil), uri: "redis://:pw@orders.apps.example.org:443", wantErr: "unknown source cluster"},
		{name: "host claimed by two registrations", f: fleet(ingress, map[string]int{"orders.apps.example.org": 7}),
			uri: "redis://:pw@orders.apps.example.org:443", wantErr: "several registered clusters"},
		{name: "mapped to a database that does not exist", f: fleet(map[string]int{"gone.apps.example.org": 9}, nil),
			uri: "redis://:pw@gone.apps.example.org:443", wantErr: "database 9 of east, which does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.f.resolve(LinkEnd{"west", 7}, 0, reapi.ReplicaSource{URI: tc.uri, ReplicationTLSSNI: tc.sni})
			if tc.wantErr != "" {
				if l.Err == nil || !strings.Contains(l.Err.Error(), tc.wantErr) {
					t.Fatalf("resolve: err %v, want one containing %q", l.Err, tc.wantErr)
				}
				if strings.Contains(l.Err.Error(), ":pw@") {
					t.Errorf("error quotes the uri: %v", l.Err)
				}
				return
			}
			if l.Err != nil {
				t.Fatalf("resolve: %v", l.Err)
			}
			if l.Source != tc.want {
				t.Errorf("source %v, want %v", l.Source, tc.want)
			}
		})
	}
}
