package secretstore

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replica-tls/replica-tls/shared/redact"
)

// ClusterAPI is how to reach a cluster's REST API. Its String, GoString, LogValue and MarshalJSON
// redact the password (and a password in the URL) and name the CA certificate by fingerprint only.
type ClusterAPI struct {
	Name     string
	URL      string // https base URL, e.g. https://cluster.example.com:9443
	Username string
	Password string
	CACert   string // PEM certificate pinning the API's certificate
	// FQDN, optional, pins the name the cluster must report (see PinTag); registration pins it
	// with a tag when the secret has none.
	FQDN string
	// ReplicationHosts, optional, are host names outside the cluster's FQDN through which Replica Of
	// links reach its databases: a Kubernetes ingress or OpenShift route host, or the SNI name an
	// entry's replication_tls_sni carries. Secret field replication_hosts: {"host": db uid}, uid 0
	// when the host serves several databases (they are told apart by port or SNI).
	ReplicationHosts []ReplicationHost
}

// ReplicationHost maps a host to this cluster, and to one database when DB is not 0.
type ReplicationHost struct {
	Host string
	DB   int
}

// Equal compares every field (ClusterAPI holds a slice, so == does not compile).
func (c ClusterAPI) Equal(o ClusterAPI) bool {
	return c.Name == o.Name && c.URL == o.URL && c.Username == o.Username && c.Password == o.Password &&
		c.CACert == o.CACert && c.FQDN == o.FQDN && slices.Equal(c.ReplicationHosts, o.ReplicationHosts)
}

// maxReplicationHosts bounds replication_hosts: a registry entry, not a DNS zone.
const maxReplicationHosts = 200

// redactPassword shows only whether a password is set.
func redactPassword(pw string) string {
	if pw == "" {
		return ""
	}
	return redact.Marker
}

func (c ClusterAPI) String() string {
	return fmt.Sprintf("ClusterAPI{Name:%s URL:%s Username:%s Password:%s CACert:%s}",
		c.Name, redactURL(c.URL), c.Username, redactPassword(c.Password), certLabel(c.CACert))
}

// GoString keeps %#v from printing the password.
func (c ClusterAPI) GoString() string { return c.String() }

// LogValue implements slog.LogValuer.
func (c ClusterAPI) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("url", redactURL(c.URL)),
		slog.String("username", c.Username),
		slog.String("password", redactPassword(c.Password)),
		slog.String("ca_cert", certLabel(c.CACert)),
	)
}

// MarshalJSON writes the redacted form, so that a ClusterAPI put in a log line or an audit event
// by mistake carries no secret.
func (c ClusterAPI) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string `json:"name"`
		URL      string `json:"url"`
		Username string `json:"username"`
		Password string `json:"password"`
		CACert   string `json:"ca_cert"`
	}{c.Name, redactURL(c.URL), c.Username, redactPassword(c.Password), certLabel(c.CACert)})
}

// redactURL hides a password in the URL's user info, keeping the user and host. It works on the
// text, so a URL too malformed to parse (a password holding '/' or '#') is shown without its password.
func redactURL(raw string) string { return redact.String(raw) }

// apiSecret is the JSON of <prefix>clusters/<name>/api.
type apiSecret struct {
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
	CACert   string `json:"ca_cert"`
	FQDN     string `json:"fqdn,omitempty"`
	// ReplicationHosts: see ClusterAPI.ReplicationHosts.
	ReplicationHosts map[string]int `json:"replication_hosts,omitempty"`
}

// hosts returns replication_hosts normalised and sorted by host.
func (a apiSecret) hosts() []ReplicationHost {
	var out []ReplicationHost
	for h, db := range a.ReplicationHosts {
		out = append(out, ReplicationHost{Host: normFQDN(h), DB: db})
	}
	slices.SortFunc(out, func(x, y ReplicationHost) int { return strings.Compare(x.Host, y.Host) })
	return out
}

func (a apiSecret) validate(at string) error {
	u, err := url.Parse(a.URL)
	switch {
	case a.URL == "":
		return invalidf("%s: field url: missing", at)
	case err != nil:
		return invalidf("%s: field url: not a valid URL", at)
	case u.Scheme != "https":
		return invalidf("%s: field url: must be https", at)
	case u.User != nil:
		return invalidf("%s: field url: must not hold credentials (use username and password)", at)
	case u.Host == "":
		return invalidf("%s: field url: missing host", at)
	case a.Username == "":
		return invalidf("%s: field username: missing", at)
	case a.Password == "":
		return invalidf("%s: field password: missing", at)
	}
	if p := certProblem(a.CACert); p != "" {
		return invalidf("%s: field ca_cert: %s", at, p)
	}
	if a.FQDN != "" && !validFQDN(normFQDN(a.FQDN)) {
		return invalidf("%s: field fqdn: not a host name", at)
	}
	if len(a.ReplicationHosts) > maxReplicationHosts {
		return invalidf("%s: field replication_hosts: %d hosts, at most %d", at, len(a.ReplicationHosts), maxReplicationHosts)
	}
	seen := map[string]bool{}
	for h, db := range a.ReplicationHosts {
		n := normFQDN(h)
		switch {
		case !validFQDN(n):
			return invalidf("%s: field replication_hosts: %.80q is not a host name (no scheme, port or path)", at, h)
		case db < 0:
			return invalidf("%s: field replication_hosts: %s: database uid %d is negative (0: several databases)", at, n, db)
		case seen[n]:
			return invalidf("%s: field replication_hosts: %s is listed twice", at, n)
		}
		seen[n] = true
	}
	return nil
}

// ClusterNames lists the registered clusters (those with an API secret), sorted.
// Names under the prefix that do not follow the layout are ignored.
func (s *Store) ClusterNames(ctx context.Context) ([]string, error) {
	names, err := cached(s, cacheKey{op: opClusters}, func() ([]string, error) {
		prefix := s.prefix + "clusters/"
		p := secretsmanager.NewListSecretsPaginator(s.api, &secretsmanager.ListSecretsInput{
			Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{prefix}}},
		}, func(o *secretsmanager.ListSecretsPaginatorOptions) { o.Limit = 100 })
		var names []string
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list secrets under %s: %w", prefix, err)
			}
			for _, e := range out.SecretList {
				rest, ok := strings.CutPrefix(aws.ToString(e.Name), prefix)
				if !ok {
					continue
				}
				if name, ok := strings.CutSuffix(rest, "/api"); ok && validClusterName(name) {
					names = append(names, name)
				}
			}
		}
		slices.Sort(names)
		return slices.Compact(names), nil
	})
	return slices.Clone(names), err
}

// ClusterAPI reads the AWSCURRENT API secret of a cluster. ErrNotFound means the cluster is not
// registered; ErrInvalid a bad name or a malformed secret.
func (s *Store) ClusterAPI(ctx context.Context, name string) (ClusterAPI, error) {
	if err := checkClusterName(name); err != nil {
		return ClusterAPI{}, err
	}
	secret := s.APISecretName(name)
	v, err := s.value(ctx, secret, StageCurrent, "")
	if err != nil {
		return ClusterAPI{}, err
	}
	at := "secret " + secret
	if !v.HasString {
		return ClusterAPI{}, invalidf("%s: not a JSON string secret", at)
	}
	var a apiSecret
	if err := decodeJSON(at, v.String, &a); err != nil {
		return ClusterAPI{}, err
	}
	if err := a.validate(at); err != nil {
		return ClusterAPI{}, err
	}
	return ClusterAPI{Name: name, URL: a.URL, Username: a.Username, Password: a.Password, CACert: a.CACert, FQDN: normFQDN(a.FQDN),
		ReplicationHosts: a.hosts()}, nil
}

// PutClusterAPI registers a cluster, or stores a new AWSCURRENT version of its API secret.
// Invalid input changes nothing.
func (s *Store) PutClusterAPI(ctx context.Context, c ClusterAPI) error {
	if err := checkClusterName(c.Name); err != nil {
		return err
	}
	secret := s.APISecretName(c.Name)
	a := apiSecret{URL: c.URL, Username: c.Username, Password: c.Password, CACert: c.CACert, FQDN: c.FQDN}
	if len(c.ReplicationHosts) > 0 {
		a.ReplicationHosts = map[string]int{}
		for _, h := range c.ReplicationHosts {
			if _, dup := a.ReplicationHosts[h.Host]; dup {
				return invalidf("secret %s: field replication_hosts: %s is listed twice", secret, normFQDN(h.Host))
			}
			a.ReplicationHosts[h.Host] = h.DB
		}
	}
	if err := a.validate("secret " + secret); err != nil {
		return err
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode secret %s: %w", secret, err)
	}
	defer s.cache.drop("") // the cluster list
	if _, err := s.put(ctx, secret, string(body), newToken(), nil); err != nil {
		return err
	}
	return nil
}
