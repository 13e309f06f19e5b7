package sweep

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reconcile"
)

// Kinds of certificates the expiry check looks at.
const (
	CertSyncer  = "syncer"  // presented by a cluster: its Replica Of client certificate
	CertProxy   = "proxy"   // presented by a cluster: what its database endpoints serve
	CertTrusted = "trusted" // in a database's trust list (authentication_ssl_client_certs)
)

// maxWhere bounds the places listed for one certificate.
const maxWhere = 20

// certUse is one certificate of the fleet and where it is used.
type certUse struct {
	cert    certs.Summary
	kinds   []string
	where   []string
	cluster string // the first place, for the audit event
	db      int
}

// collectCerts gathers, deduplicated by fingerprint, the syncer and proxy certificates the clusters
// present and every certificate in the databases' trust lists, within scope: one cluster (and one
// of its databases) or, with an empty cluster, all of them.
func collectCerts(fleet *reconcile.Fleet, cluster string, db int, memo *certMemo) []certUse {
	byFP := map[string]*certUse{}
	var order []string
	add := func(text, kind, where, cl string, uid int) {
		c := memo.parse(text)
		if c == nil {
			return
		}
		u, ok := byFP[c.Fingerprint]
		if !ok {
			u = &certUse{cert: c.Summary(), cluster: cl, db: uid}
			byFP[c.Fingerprint] = u
			order = append(order, c.Fingerprint)
		}
		if !slices.Contains(u.kinds, kind) {
			u.kinds = append(u.kinds, kind)
		}
		if len(u.where) < maxWhere && !slices.Contains(u.where, where) {
			u.where = append(u.where, where)
		}
	}
	names := make([]string, 0, len(fleet.Clusters))
	for n := range fleet.Clusters {
		if cluster == "" || n == cluster {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		cs := fleet.Clusters[n]
		add(cs.SyncerCert, CertSyncer, n+" presents it as syncer certificate", n, 0)
		add(cs.ProxyCert, CertProxy, n+" presents it as proxy certificate", n, 0)
	}
	for _, n := range names {
		for _, d := range fleet.Clusters[n].DBs {
			if db > 0 && d.UID != db {
				continue
			}
			for _, cc := range d.AuthenticationSSLClientCerts {
				add(cc.ClientCert, CertTrusted, fmt.Sprintf("%s/%d trusts it", n, d.UID), n, d.UID)
			}
		}
	}
	out := make([]certUse, 0, len(order))
	for _, fp := range order {
		out = append(out, *byFP[fp])
	}
	slices.SortStableFunc(out, func(a, b certUse) int { return a.cert.NotAfter.Compare(b.cert.NotAfter) })
	return out
}

// stage is where a certificate stands against the thresholds at a given time.
type stage struct {
	Threshold int  // the smallest threshold (days) crossed; 0 when expired or none
	Expired   bool // NotAfter is past
	DaysLeft  int  // whole days left, 0 when expired
}

// due reports the stage of a certificate expiring at notAfter, at now; ok is false when it is not
// within the largest threshold. Only the smallest threshold crossed counts: a certificate first seen
// 5 days before expiry is reported once at 7 days, not at 30, 14 and 7 together, and the larger
// thresholds are never reported later.
func due(notAfter, now time.Time, thresholds []int) (stage, bool) {
	left := notAfter.Sub(now)
	if left <= 0 {
		return stage{Expired: true}, true
	}
	st := stage{DaysLeft: int(left / (24 * time.Hour))}
	for _, t := range thresholds {
		if left <= time.Duration(t)*24*time.Hour && (st.Threshold == 0 || t < st.Threshold) {
			st.Threshold = t
		}
	}
	return st, st.Threshold > 0
}

// key names a notice durably: one per certificate and stage, so each is sent once.
func (s stage) key(fingerprint string) string {
	if s.Expired {
		return fingerprint + "/expired"
	}
	return fmt.Sprintf("%s/%dd", fingerprint, s.Threshold)
}

func (s stage) label() string {
	if s.Expired {
		return "expired"
	}
	return fmt.Sprintf("%dd", s.Threshold)
}

// ExpiryNotice is one certificate within a threshold of its expiry, as the sweep reports it.
type ExpiryNotice struct {
	Fingerprint string    `json:"sha256"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
	Kinds       []string  `json:"kinds"`
	Where       []string  `json:"where"`
	Expired     bool      `json:"expired"`
	Threshold   int       `json:"threshold_days,omitempty"`
	DaysLeft    int       `json:"days_left"`
	// Notified: this sweep sent the notice (in a dry run: would send it); false when it was sent
	// by an earlier sweep, or could not be sent.
	Notified bool   `json:"notified"`
	Error    string `json:"error,omitempty"`
}

func sortNotices(ns []ExpiryNotice) {
	slices.SortStableFunc(ns, func(a, b ExpiryNotice) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
}
