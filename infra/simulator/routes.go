package simulator

import (
	"fmt"
	"strings"
)

// Link addresses outside the cluster's own DNS names. On Kubernetes and OpenShift a source database
// is reached through an ingress or a route that passes TLS through by SNI: "If the source cluster is
// reached through an ingress route (for example, an OpenShift route or any TLS pass-through that
// relies on SNI), set tlsSniName on each replicaSources item to the SNI hostname configured on the
// ingress. Without it, the syncer cannot route TLS to the source database's proxy and replication
// fails" (redis.io, Redis for Kubernetes > Replica databases); the entry carries it as
// replication_tls_sni (bdb syncer_sources object). The simulator models a route host (one database,
// any port) and an ingress host (several databases, told apart by the SNI, which must be one of the
// cluster's route hosts).

// AddRoute makes host a route to database uid of the cluster: a uri naming host reaches it, and so
// does an ingress of the cluster when host is the entry's replication_tls_sni.
func (h *ClusterHandle) AddRoute(host string, uid int) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.c.dbs[uid] == nil {
		return fmt.Errorf("cluster %s has no database %d", h.c.spec.Name, uid)
	}
	if h.c.routes == nil {
		h.c.routes = map[string]int{}
	}
	h.c.routes[strings.ToLower(host)] = uid
	return nil
}

// AddIngress makes host an ingress of the cluster: it routes by the entry's replication_tls_sni.
func (h *ClusterHandle) AddIngress(host string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.c.ingresses == nil {
		h.c.ingresses = map[string]bool{}
	}
	h.c.ingresses[strings.ToLower(host)] = true
}

// byRoute resolves a uri host that is a route or an ingress; the caller holds s.mu.
func (s *Sim) byRoute(host, sni string) (*cluster, *db, bool) {
	host, sni = strings.ToLower(host), strings.ToLower(sni)
	for _, c := range s.clusters {
		if uid, ok := c.routes[host]; ok && (sni == "" || sni == host) {
			return c, c.dbs[uid], true
		}
		if c.ingresses[host] {
			if uid, ok := c.routes[sni]; ok {
				return c, c.dbs[uid], true
			}
			for _, d := range c.dbs {
				if sni != "" && strings.EqualFold(sni, d.dnsName) {
					return c, d, true
				}
			}
			return nil, nil, false // no SNI, or one the ingress does not route
		}
	}
	return nil, nil, false
}
