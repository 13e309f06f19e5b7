package simulator

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Topology describes the simulated clusters and their databases. It is read from JSON (see
// topologies/demo.json) or built in Go.
type Topology struct {
	Clusters []ClusterSpec `json:"clusters"`
}

// ClusterSpec is one simulated Redis Enterprise cluster.
type ClusterSpec struct {
	Name      string     `json:"name"` // registry name, e.g. "east"
	FQDN      string     `json:"fqdn"` // e.g. "east.redis.local"; GET /v1/cluster returns it as name
	Users     []UserSpec `json:"users"`
	Databases []DBSpec   `json:"databases"`
	// LegacyCertAPI makes PUT /v1/cluster/certificates answer 404, as clusters older than 7.22.2 do.
	LegacyCertAPI bool `json:"legacy_cert_api,omitempty"`
}

// UserSpec is an API user. Role "admin" may write; "db_viewer" and "cluster_viewer" are read-only.
type UserSpec struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// DBSpec is a database at start. Empty optional fields take the real defaults (TLS off, no client
// authentication, a random admin password).
type DBSpec struct {
	UID                         int             `json:"uid"`
	Name                        string          `json:"name"`
	Port                        int             `json:"port"`
	TLSMode                     string          `json:"tls_mode,omitempty"`
	EnforceClientAuthentication string          `json:"enforce_client_authentication,omitempty"`
	AuthenticationAdminPass     string          `json:"authentication_admin_pass,omitempty"`
	ReplicaOf                   []ReplicaOfSpec `json:"replica_of,omitempty"`
}

// ReplicaOfSpec names a source database: the destination gets a plain (unencrypted) Replica Of link to it.
type ReplicaOfSpec struct {
	Cluster string `json:"cluster"`
	DB      int    `json:"db"`
}

// Roles the simulator knows.
const (
	RoleAdmin         = "admin"
	RoleDBViewer      = "db_viewer"
	RoleClusterViewer = "cluster_viewer"
)

// maxReplicaSources is the documented limit of replica_sources entries per database.
const maxReplicaSources = 32

//go:embed topologies/demo.json
var demoTopology []byte

// DemoTopology is the embedded default: "east" with source DB 1 "orders" on port 12000 and "west" with DB 1
// "orders-replica" on port 12001, a plain Replica Of east/1; each cluster has an admin and a viewer.
// The embedded file is covered by a test, so the error only guards against a broken build.
func DemoTopology() (Topology, error) {
	t, err := ParseTopology(demoTopology)
	if err != nil {
		return Topology{}, fmt.Errorf("embedded demo topology: %w", err)
	}
	return t, nil
}

// LoadTopology reads and validates a topology JSON file.
func LoadTopology(path string) (Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("read topology: %w", err)
	}
	t, err := ParseTopology(b)
	if err != nil {
		return Topology{}, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// ParseTopology decodes topology JSON strictly (unknown keys are errors, so typos do not go unnoticed)
// and validates it.
func ParseTopology(b []byte) (Topology, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var t Topology
	if err := dec.Decode(&t); err != nil {
		return Topology{}, fmt.Errorf("decode topology: %w", err)
	}
	if dec.More() {
		return Topology{}, errors.New("decode topology: trailing data after the JSON object")
	}
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// Validate reports every problem at once.
func (t Topology) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(t.Clusters) == 0 {
		add("no clusters")
	}
	names, fqdns := map[string]bool{}, map[string]bool{}
	ports := map[int]string{}
	dbs := map[string]map[int]bool{}
	for i, c := range t.Clusters {
		where := fmt.Sprintf("cluster %d (%q)", i+1, c.Name)
		if c.Name == "" || strings.ContainsAny(c.Name, "/ \\") {
			add("%s: name must be non-empty without slashes or spaces", where)
		}
		if names[c.Name] {
			add("%s: duplicate name", where)
		}
		names[c.Name] = true
		if !validFQDN(c.FQDN) {
			add("%s: fqdn %q is not a DNS name", where, c.FQDN)
		}
		if fqdns[strings.ToLower(c.FQDN)] {
			add("%s: duplicate fqdn %q", where, c.FQDN)
		}
		fqdns[strings.ToLower(c.FQDN)] = true
		admins, usernames := 0, map[string]bool{}
		for j, u := range c.Users {
			switch {
			case u.Username == "" || u.Password == "":
				add("%s: user %d: username and password are required", where, j+1)
			case usernames[u.Username]:
				add("%s: user %q listed twice", where, u.Username)
			}
			usernames[u.Username] = true
			switch u.Role {
			case RoleAdmin:
				admins++
			case RoleDBViewer, RoleClusterViewer:
			default:
				add("%s: user %q: role %q: want %s, %s or %s", where, u.Username, u.Role, RoleAdmin, RoleDBViewer, RoleClusterViewer)
			}
		}
		if admins == 0 {
			add("%s: needs at least one %s user", where, RoleAdmin)
		}
		dbs[c.Name] = map[int]bool{}
		for _, d := range c.Databases {
			dw := fmt.Sprintf("%s db %d", where, d.UID)
			if d.UID <= 0 {
				add("%s: uid must be positive", dw)
			}
			if dbs[c.Name][d.UID] {
				add("%s: duplicate uid", dw)
			}
			dbs[c.Name][d.UID] = true
			if d.Name == "" {
				add("%s: name is required", dw)
			}
			if d.Port <= 0 || d.Port > 65535 {
				add("%s: port %d out of range", dw, d.Port)
			} else if other, ok := ports[d.Port]; ok {
				add("%s: port %d already used by %s", dw, d.Port, other)
			} else {
				ports[d.Port] = dw
			}
			if d.TLSMode != "" && !validTLSMode(d.TLSMode) {
				add("%s: tls_mode %q: want enabled, disabled or replica_ssl", dw, d.TLSMode)
			}
			if d.EnforceClientAuthentication != "" && !validOnOff(d.EnforceClientAuthentication) {
				add("%s: enforce_client_authentication %q: want enabled or disabled", dw, d.EnforceClientAuthentication)
			}
			if len(d.ReplicaOf) > maxReplicaSources {
				add("%s: more than %d replica_of entries", dw, maxReplicaSources)
			}
		}
	}
	// Replica Of references need every cluster's DBs, hence a second pass.
	for _, c := range t.Clusters {
		for _, d := range c.Databases {
			seen := map[ReplicaOfSpec]bool{}
			for _, r := range d.ReplicaOf {
				dw := fmt.Sprintf("cluster %q db %d: replica_of %s/%d", c.Name, d.UID, r.Cluster, r.DB)
				switch {
				case !dbs[r.Cluster][r.DB]:
					add("%s: no such database", dw)
				case r.Cluster == c.Name && r.DB == d.UID:
					add("%s: a database cannot replicate itself", dw)
				case seen[r]:
					add("%s: listed twice", dw)
				}
				seen[r] = true
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid topology: %w", errors.Join(errs...))
	}
	return nil
}

func validTLSMode(s string) bool { return s == "enabled" || s == "disabled" || s == "replica_ssl" }
func validOnOff(s string) bool   { return s == "enabled" || s == "disabled" }

// validFQDN accepts dot-separated labels of letters, digits and hyphens.
func validFQDN(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
