package sweep

import (
	"fmt"
	"strings"
	"sync"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// linkState is what the snapshot says about one link, for telling drift from a link never secured.
type linkState struct {
	Source      reapi.DB            // the source database as read at the start of the sweep
	Entry       reapi.ReplicaSource // the destination's replica_sources entry for this source
	DestCluster string
	// SourceTrusts holds the fingerprints of the certificates the source trusts.
	SourceTrusts map[string]bool
	// DestSyncer is the certificate the destination presents on this link: the entry's own client
	// certificate, else its cluster's syncer certificate; nil when unknown.
	DestSyncer *certs.Summary
	ClientAuth bool // the policy enforces client authentication
}

// secured reports whether the link had been secured before, by this project or by hand: the
// destination entry carries encryption or a server certificate, or the source trusts the syncer
// certificate its destination cluster presents. A link never secured (a new link, announced or not)
// is secured by the sweep, not reported as drift.
func (s linkState) secured() bool {
	return s.Entry.Encryption || strings.TrimSpace(s.Entry.ServerCert) != "" || s.trustsDest()
}

func (s linkState) trustsDest() bool {
	return s.DestSyncer != nil && s.SourceTrusts[s.DestSyncer.Fingerprint]
}

// detectDrift lists, in words, what was undone on each side of a link that had been secured: TLS or
// client authentication turned off or the destination's syncer certificate no longer trusted on the
// source; encryption turned off or the server certificate removed on the destination's entry.
// Certificates rotated by this project are not drift: the source trusts the new syncer certificate
// before the destination presents it.
func detectDrift(s linkState) (source, dest []string) {
	if !s.secured() {
		return nil, nil
	}
	if s.Source.TLSMode.Rank() == 0 {
		source = append(source, fmt.Sprintf("tls_mode is %s: TLS was turned off on a source database secured for cluster %s", orUnset(string(s.Source.TLSMode)), s.DestCluster))
	}
	if s.ClientAuth && s.Source.EnforceClientAuthentication != reapi.Enabled {
		source = append(source, "enforce_client_authentication is "+orUnset(s.Source.EnforceClientAuthentication)+": client authentication was turned off")
	}
	if s.DestSyncer != nil && !s.trustsDest() {
		source = append(source, fmt.Sprintf("the syncer certificate cluster %s presents (sha256:%s %q) is no longer trusted", s.DestCluster, short(s.DestSyncer.Fingerprint), s.DestSyncer.Subject))
	}
	hasCert := strings.TrimSpace(s.Entry.ServerCert) != ""
	switch {
	case hasCert && !s.Entry.Encryption:
		dest = append(dest, "encryption was turned off on the replica source entry (it still holds a server certificate)")
	case s.Entry.Encryption && !hasCert:
		dest = append(dest, "the replica source entry lost its server certificate (encryption is on)")
	}
	return source, dest
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// certMemo parses certificate text once per sweep; a sweep meets the same few certificates in
// thousands of places. Safe for concurrent use.
type certMemo struct {
	mu   sync.Mutex
	seen map[string]*certs.Cert // nil value: not exactly one certificate
}

func newCertMemo() *certMemo { return &certMemo{seen: map[string]*certs.Cert{}} }

func (m *certMemo) parse(text string) *certs.Cert {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.seen[text]; ok {
		return c
	}
	var c *certs.Cert
	if one, err := certs.ParseOne(text); err == nil {
		c = &one
	}
	m.seen[text] = c
	return c
}

// linkStateOf builds a link's state from the snapshot; ok is false when the link's databases are
// not in it (an unresolved source).
func linkStateOf(fleet *reconcile.Fleet, l reconcile.Link, memo *certMemo, clientAuth bool) (linkState, bool) {
	if l.Err != nil {
		return linkState{}, false
	}
	srcCluster, ok1 := fleet.Clusters[l.Source.Cluster]
	dstCluster, ok2 := fleet.Clusters[l.Dest.Cluster]
	if !ok1 || !ok2 {
		return linkState{}, false
	}
	src, ok1 := srcCluster.DB(l.Source.DB)
	dst, ok2 := dstCluster.DB(l.Dest.DB)
	if !ok1 || !ok2 {
		return linkState{}, false
	}
	idx := -1
	for i, rs := range dst.ReplicaSources {
		if (l.EntryUID != 0 && rs.UID == l.EntryUID) || (l.EntryUID == 0 && i == l.Entry) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return linkState{}, false
	}
	st := linkState{Source: src, Entry: dst.ReplicaSources[idx], DestCluster: l.Dest.Cluster, SourceTrusts: map[string]bool{}, ClientAuth: clientAuth}
	for _, cc := range src.AuthenticationSSLClientCerts {
		if c := memo.parse(cc.ClientCert); c != nil {
			st.SourceTrusts[c.Fingerprint] = true
		}
	}
	// An entry with its own client certificate presents that one instead of the cluster's syncer's.
	presented := dstCluster.SyncerCert
	if strings.TrimSpace(st.Entry.ClientCert) != "" {
		presented = st.Entry.ClientCert
	}
	if c := memo.parse(presented); c != nil {
		sum := c.Summary()
		st.DestSyncer = &sum
	}
	return st, true
}
