package reconcile

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// Secrets Manager version stages the planner reads.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Scope is how much of a source database's traffic TLS covers.
type Scope string

// The two TLS scopes of docs/architecture.md.
const (
	ScopeReplica Scope = "replica" // tls_mode replica_ssl: replication only
	ScopeAll     Scope = "all"     // tls_mode enabled: every connection, client certificates trusted too
)

// TLSMode is the tls_mode a scope asks for, or "" for an unknown scope.
func (s Scope) TLSMode() reapi.TLSMode {
	switch s {
	case ScopeReplica:
		return reapi.TLSReplicaSSL
	case ScopeAll:
		return reapi.TLSEnabled
	}
	return ""
}

// Policy is what a link should look like beyond what the certificates dictate.
//
// ClientAuth false turns client authentication off, so build policies from DefaultPolicy rather than
// a literal; a Policy without a Scope is refused, which catches the zero value.
type Policy struct {
	Scope      Scope
	ClientAuth bool // enforce client authentication on the source DB (the default)
	DryRun     bool // validate with dry_run PUTs and audit "planned"; change nothing
	// Stated marks a policy the trigger stated for the link (a "Replica Database Created" event). A
	// policy that is not stated is a default: a source database's stored policy (Config.Policies),
	// recorded when an event stated one, wins over it, so a sweep never undoes a deliberate choice.
	Stated bool
	// Prune allows removing trusted certificates: managed syncer certificates no destination needs
	// any more, and superseded ones past their grace period. Only runs that read the whole fleet (the
	// sweep) set it; event-driven runs see a few clusters, so they add what is missing and never
	// remove (a certificate another run just added for a destination they did not read stays).
	Prune bool
}

// DefaultPolicy is scope replica with client authentication enforced.
func DefaultPolicy() Policy { return Policy{Scope: ScopeReplica, ClientAuth: true} }

// Validate refuses an unknown or missing scope.
func (p Policy) Validate() error {
	if p.Scope.TLSMode() == "" {
		return reject(CodeInvalidPolicy, fmt.Sprintf("TLS scope %q: want %q or %q", p.Scope, ScopeReplica, ScopeAll), nil)
	}
	return nil
}

// CertVersion is one version of a certificate secret.
type CertVersion struct {
	VersionID   string
	Stages      []string
	Certificate string // PEM, never a key
	Created     time.Time
}

// HasStage reports whether the version carries the stage label.
func (v CertVersion) HasStage(stage string) bool { return slices.Contains(v.Stages, stage) }

// DestCluster is a cluster hosting at least one destination of the source DB being planned.
type DestCluster struct {
	Name      string
	Syncer    []CertVersion // its syncer secret's staged versions; empty when it has none
	Presented string        // the syncer certificate it presents now (GET /v1/cluster), may be empty
}

// SourceInput is everything PlanSource needs, gathered beforehand.
type SourceInput struct {
	Cluster      string // the source cluster's registered name, for messages
	DB           reapi.DB
	Policy       Policy
	Destinations []DestCluster
	// Managed holds the fingerprint of every version of every registered syncer secret: only these
	// may ever be removed from a trust list.
	Managed     map[string]bool
	ClientCerts []string        // scope all: client certificates to trust as well
	Prunable    map[string]bool // AWSPREVIOUS fingerprints it is safe to stop trusting
	Now         time.Time

	cache parseCache // set by the Reconciler for a run; nil parses every time
}

// SourcePlan is the difference between a source DB and its desired state.
type SourcePlan struct {
	Update   reapi.DBUpdate // only the fields that differ; Empty when converged
	Changes  []string       // in words, certificates by fingerprint and subject
	Warnings []string
	Before   audit.State
	After    audit.State
	want     sourceWant
}

// sourceWant is what a read-back must show after the update.
type sourceWant struct {
	pc      parseCache
	tlsMode reapi.TLSMode
	enforce string
	trust   []string // keys that must all be in the list
}

// trustEntry is one authentication_ssl_client_certs entry, current or desired.
type trustEntry struct {
	key    string // fingerprint; for text that does not parse, the SHA-256 of the trimmed text
	text   string // what is (or will be) sent: existing entries keep their exact text
	cert   *certs.Cert
	origin string // why a new entry is wanted, for Changes
}

func (e trustEntry) summary() certs.Summary {
	if e.cert == nil {
		return certs.Summary{Fingerprint: e.key, Subject: "(unparseable certificate)"}
	}
	return e.cert.Summary()
}

func (e trustEntry) describe() string { return describe(e.summary()) }

func describe(s certs.Summary) string {
	if s.NotAfter.IsZero() {
		return fmt.Sprintf("sha256:%s %q", s.Fingerprint, s.Subject)
	}
	return fmt.Sprintf("sha256:%s %q expires %s", s.Fingerprint, s.Subject, s.NotAfter.UTC().Format(time.DateOnly))
}

// parseCache memoizes certificate parsing by text for one run: a sweep meets the same few
// certificates thousands of times. A nil cache parses every time. Parsed certificates are shared:
// never modify them.
type parseCache map[string]parsedText

type parsedText struct {
	certs []certs.Cert
	err   error
}

func (pc parseCache) parse(text string) ([]certs.Cert, error) {
	if pc == nil {
		return certs.Parse(text)
	}
	if p, ok := pc[text]; ok {
		return p.certs, p.err
	}
	cs, err := certs.Parse(text)
	pc[text] = parsedText{cs, err}
	return cs, err
}

// existingEntry classifies a certificate text found on a cluster.
func existingEntry(pc parseCache, text string) trustEntry {
	if cs, err := pc.parse(text); err == nil && len(cs) == 1 {
		return trustEntry{key: cs[0].Fingerprint, text: text, cert: &cs[0]}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(text)))
	return trustEntry{key: hex.EncodeToString(sum[:]), text: text}
}

// PlanSource computes the source DB's desired state from its inputs and the update that reaches it.
// It does no I/O. Bad certificates from Secrets Manager give a *RejectError and no plan.
func PlanSource(in SourceInput) (SourcePlan, error) {
	if err := in.Policy.Validate(); err != nil {
		return SourcePlan{}, err
	}
	where := fmt.Sprintf("source %s/%d", in.Cluster, in.DB.UID)
	pc := in.cache
	var p SourcePlan

	// Certificates to trust, validated before anything is compared.
	var wanted []trustEntry
	wantedKeys := map[string]bool{}
	managed := map[string]bool{}
	for k, v := range in.Managed {
		managed[k] = v
	}
	dests := slices.Clone(in.Destinations)
	slices.SortFunc(dests, func(a, b DestCluster) int { return strings.Compare(a.Name, b.Name) })
	dests = slices.CompactFunc(dests, func(a, b DestCluster) bool { return a.Name == b.Name })
	for _, d := range dests {
		if len(d.Syncer) == 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("destination cluster %s has no syncer certificate in Secrets Manager: trusting only the certificate it presents", d.Name))
		}
		for _, stage := range []string{StageCurrent, StagePending, StagePrevious} {
			for _, v := range d.Syncer {
				if !v.HasStage(stage) {
					continue
				}
				what := fmt.Sprintf("syncer certificate %s of cluster %s", stage, d.Name)
				c, err := validCert(pc, v.Certificate, what, in.Now, x509.ExtKeyUsageClientAuth, stage == StagePrevious)
				if err != nil {
					return SourcePlan{}, err
				}
				if c == nil {
					// An expired AWSPREVIOUS is simply no longer trusted, unless still presented below.
					continue
				}
				managed[c.Fingerprint] = true
				if stage == StagePrevious && in.Prunable[c.Fingerprint] {
					continue
				}
				if !wantedKeys[c.Fingerprint] {
					wantedKeys[c.Fingerprint] = true
					wanted = append(wanted, trustEntry{key: c.Fingerprint, text: c.PEM, cert: c, origin: what})
				}
			}
		}
		// Invariant 1: whatever a destination presents stays trusted, even an expired certificate
		// already in the list; a new one is added only if it could be accepted.
		if strings.TrimSpace(d.Presented) == "" {
			continue
		}
		cs, err := pc.parse(d.Presented)
		if err != nil || len(cs) != 1 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("cluster %s presents a syncer certificate that does not parse as one certificate: not added", d.Name))
			continue
		}
		c := cs[0]
		if wantedKeys[c.Fingerprint] {
			continue
		}
		wantedKeys[c.Fingerprint] = true
		entry := trustEntry{key: c.Fingerprint, text: c.PEM, cert: &c, origin: "syncer certificate presented by cluster " + d.Name}
		if err := c.CheckValidity(in.Now); errors.Is(err, certs.ErrExpired) {
			entry.text = "" // keep if present, never add
			p.Warnings = append(p.Warnings, fmt.Sprintf("cluster %s presents an expired syncer certificate %s", d.Name, describe(c.Summary())))
		}
		wanted = append(wanted, entry)
	}
	if in.Policy.Scope == ScopeAll {
		for i, text := range in.ClientCerts {
			what := fmt.Sprintf("client certificate %d of %s", i+1, where)
			c, err := validCert(pc, text, what, in.Now, x509.ExtKeyUsageClientAuth, false)
			if err != nil {
				return SourcePlan{}, err
			}
			if !wantedKeys[c.Fingerprint] {
				wantedKeys[c.Fingerprint] = true
				wanted = append(wanted, trustEntry{key: c.Fingerprint, text: c.PEM, cert: c, origin: "client certificate"})
			}
		}
	}

	// Desired list: existing entries in order (unmanaged ones always, managed ones while wanted),
	// deduplicated, then the wanted ones not there yet.
	var current, desired []trustEntry
	seen := map[string]bool{}
	for _, cc := range in.DB.AuthenticationSSLClientCerts {
		e := existingEntry(pc, cc.ClientCert)
		current = append(current, e)
		switch {
		case seen[e.key]:
			p.Changes = append(p.Changes, "remove duplicate trusted certificate "+e.describe())
		case in.Policy.Prune && managed[e.key] && !wantedKeys[e.key]:
			p.Changes = append(p.Changes, "stop trusting "+e.describe()+": a managed syncer certificate no destination cluster needs")
		default:
			desired = append(desired, e)
		}
		seen[e.key] = true
	}
	for _, w := range wanted {
		if seen[w.key] || w.text == "" {
			continue
		}
		seen[w.key] = true
		desired = append(desired, w)
		p.Changes = append(p.Changes, "trust "+w.origin+": "+w.describe())
	}

	wantMode := in.DB.TLSMode
	if scopeMode := in.Policy.Scope.TLSMode(); scopeMode.Rank() > wantMode.Rank() {
		wantMode = scopeMode
	}
	wantEnforce := reapi.Enabled
	if !in.Policy.ClientAuth {
		wantEnforce = reapi.Disabled
		p.Warnings = append(p.Warnings, "policy turns client authentication off: any client that reaches the endpoint may replicate the database")
	}
	if wantEnforce == reapi.Enabled && len(desired) == 0 {
		return SourcePlan{}, reject(CodeEmptyTrustList, where+": client authentication would be enforced with no trusted certificate, locking every client out", nil)
	}

	var head []string
	if wantMode != in.DB.TLSMode {
		m := wantMode
		p.Update.TLSMode = &m
		head = append(head, fmt.Sprintf("tls_mode %s -> %s", orNone(string(in.DB.TLSMode)), wantMode))
	}
	if curEnforce := enforceOf(in.DB); curEnforce != wantEnforce {
		e := wantEnforce
		p.Update.EnforceClientAuthentication = &e
		head = append(head, fmt.Sprintf("enforce_client_authentication %s -> %s", curEnforce, wantEnforce))
	}
	p.Changes = append(head, p.Changes...)
	if !slices.Equal(keys(current), keys(desired)) {
		list := make([]reapi.ClientCert, 0, len(desired))
		for _, e := range desired {
			list = append(list, reapi.ClientCert{ClientCert: e.text})
		}
		p.Update.AuthenticationSSLClientCerts = &list
	}
	if p.Update.Empty() {
		p.Changes = nil
	}

	p.Before = sourceState(pc, in.DB)
	p.After = audit.State{TLSMode: string(wantMode), ClientAuthentication: wantEnforce, TrustedCerts: summaries(desired)}
	p.want = sourceWant{pc: pc, tlsMode: wantMode, enforce: wantEnforce, trust: keys(desired)}
	return p, nil
}

// verify checks a read-back. conflict means a certificate we wrote or kept is missing: someone else
// wrote the list concurrently, and planning again from what is there now keeps both writers' work.
func (w sourceWant) verify(got reapi.DB) (conflict bool, err error) {
	have := map[string]bool{}
	for _, cc := range got.AuthenticationSSLClientCerts {
		have[existingEntry(w.pc, cc.ClientCert).key] = true
	}
	var missing []string
	for _, k := range w.trust {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return true, fmt.Errorf("%w: %d trusted certificate(s) missing, first sha256:%s", errVerify, len(missing), missing[0])
	}
	if got.TLSMode.Rank() < w.tlsMode.Rank() {
		return false, fmt.Errorf("%w: tls_mode is %s, want %s", errVerify, orNone(string(got.TLSMode)), w.tlsMode)
	}
	if e := enforceOf(got); e != w.enforce {
		return false, fmt.Errorf("%w: enforce_client_authentication is %s, want %s", errVerify, e, w.enforce)
	}
	return false, nil
}

// DestInput is everything PlanDestination needs, gathered beforehand.
type DestInput struct {
	Cluster       string // the destination cluster's registered name, for messages
	DB            reapi.DB
	Entry         int // index of the source's entry in DB.ReplicaSources, used when EntryUID is 0
	EntryUID      int // uid of the source's entry; preferred, as it survives a re-read
	SourceCluster string
	Proxy         CertVersion // AWSCURRENT of the source cluster's proxy secret
	Presented     string      // proxy certificate the source cluster presents now, optional
	// --- proxy rotation hook ---
	// ProxyPending is the AWSPENDING version of the source cluster's proxy secret, zero when there is
	// none. When the cluster presents it (a proxy rotation between setSecret and finishSecret), it is
	// the server certificate to trust instead of AWSCURRENT.
	ProxyPending CertVersion
	// --- end proxy rotation hook ---
	Now time.Time

	cache parseCache
}

// DestPlan is the difference between a destination DB's entry for one source and its desired state.
type DestPlan struct {
	Update   reapi.DBUpdate // the whole replica_sources list when anything differs
	Changes  []string
	Warnings []string
	Before   audit.State
	After    audit.State
	Entry    int // index of the entry planned
	want     destWant
}

type destWant struct {
	pc          parseCache
	entryUID    int
	entry       int
	fingerprint string
	uids        []int // every entry's uid, which must all survive
}

// PlanDestination computes the update that gives the source's entry encryption and the source
// cluster's current proxy certificate, leaving every other field of every entry as it is. The proxy
// certificate is AWSCURRENT, or AWSPENDING while the source cluster presents that one (a rotation).
func PlanDestination(in DestInput) (DestPlan, error) {
	where := fmt.Sprintf("destination %s/%d", in.Cluster, in.DB.UID)
	pc := in.cache
	idx, err := findEntry(in.DB, in.EntryUID, in.Entry)
	if err != nil {
		return DestPlan{}, reject(CodeUnknownLink, where+": "+err.Error(), nil)
	}
	what := "proxy certificate AWSCURRENT of cluster " + in.SourceCluster
	target := in.Proxy
	// --- proxy rotation hook: the syncer must trust what the source serves, if it is a staged version ---
	if presentsPending(pc, in) {
		what = "proxy certificate AWSPENDING of cluster " + in.SourceCluster + " (presented: rotation in progress)"
		target = in.ProxyPending
	}
	// --- end proxy rotation hook ---
	proxy, err := validCert(pc, target.Certificate, what, in.Now, x509.ExtKeyUsageServerAuth, false)
	if err != nil {
		return DestPlan{}, err
	}
	p := DestPlan{Entry: idx}
	if strings.TrimSpace(in.Presented) != "" && existingEntry(pc, in.Presented).key != proxy.Fingerprint {
		p.Warnings = append(p.Warnings, fmt.Sprintf("cluster %s presents a proxy certificate other than its AWSCURRENT %s", in.SourceCluster, describe(proxy.Summary())))
	}

	cur := in.DB.ReplicaSources[idx]
	next := cur
	label := fmt.Sprintf("replica source %d", idx+1)
	if cur.UID != 0 {
		label = fmt.Sprintf("replica source uid %d", cur.UID)
	}
	if !cur.Encryption {
		next.Encryption = true
		p.Changes = append(p.Changes, label+": encryption off -> on")
	}
	curServer := existingEntry(pc, cur.ServerCert)
	if strings.TrimSpace(cur.ServerCert) == "" || curServer.key != proxy.Fingerprint {
		next.ServerCert = proxy.PEM
		from := "none"
		if strings.TrimSpace(cur.ServerCert) != "" {
			from = curServer.describe()
		}
		p.Changes = append(p.Changes, fmt.Sprintf("%s: server certificate %s -> %s", label, from, describe(proxy.Summary())))
	}
	if len(p.Changes) > 0 {
		list := slices.Clone(in.DB.ReplicaSources)
		list[idx] = next
		p.Update.ReplicaSources = &list
	}
	p.Before = destState(pc, cur)
	p.After = destState(pc, next)
	p.After.LinkStatus = ""
	uids := make([]int, 0, len(in.DB.ReplicaSources))
	for _, rs := range in.DB.ReplicaSources {
		uids = append(uids, rs.UID)
	}
	p.want = destWant{pc: pc, entryUID: cur.UID, entry: idx, fingerprint: proxy.Fingerprint, uids: uids}
	return p, nil
}

// presentsPending reports whether the source cluster presents the AWSPENDING version of its proxy
// secret (part of the proxy rotation hook).
func presentsPending(pc parseCache, in DestInput) bool {
	if strings.TrimSpace(in.ProxyPending.Certificate) == "" || strings.TrimSpace(in.Presented) == "" {
		return false
	}
	return existingEntry(pc, in.Presented).key == existingEntry(pc, in.ProxyPending.Certificate).key
}

// verify checks a read-back of the destination DB.
func (w destWant) verify(got reapi.DB) (conflict bool, err error) {
	idx, err := findEntry(got, w.entryUID, w.entry)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errVerify, err)
	}
	have := map[int]bool{}
	for _, rs := range got.ReplicaSources {
		have[rs.UID] = true
	}
	for _, uid := range w.uids {
		if !have[uid] {
			return false, fmt.Errorf("%w: replica source uid %d is gone", errVerify, uid)
		}
	}
	e := got.ReplicaSources[idx]
	if existingEntry(w.pc, e.ServerCert).key != w.fingerprint {
		return true, fmt.Errorf("%w: replica source %d does not hold server certificate sha256:%s", errVerify, idx+1, w.fingerprint)
	}
	if !e.Encryption {
		return false, fmt.Errorf("%w: replica source %d still has encryption off", errVerify, idx+1)
	}
	return false, nil
}

// findEntry locates a replica_sources entry by uid, or by index when uid is 0.
func findEntry(db reapi.DB, uid, index int) (int, error) {
	if uid != 0 {
		for i, rs := range db.ReplicaSources {
			if rs.UID == uid {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no replica source with uid %d", uid)
	}
	if index < 0 || index >= len(db.ReplicaSources) {
		return 0, fmt.Errorf("no replica source number %d (the database has %d)", index+1, len(db.ReplicaSources))
	}
	return index, nil
}

// validCert checks a certificate from Secrets Manager: exactly one certificate, not expired, allowed
// for usage. expiredOK turns an expired certificate into (nil, nil): it is just not used.
// A not-yet-valid certificate is accepted: trusting a new certificate early is the point of rotation.
func validCert(pc parseCache, text, what string, now time.Time, usage x509.ExtKeyUsage, expiredOK bool) (*certs.Cert, error) {
	cs, err := pc.parse(text)
	if err != nil {
		code := CodeInvalidCertificate
		if errors.Is(err, certs.ErrPrivateKey) {
			code = CodePrivateKey
		}
		return nil, reject(code, what+": "+redact(err.Error()), err)
	}
	if len(cs) != 1 {
		return nil, reject(CodeInvalidCertificate, fmt.Sprintf("%s: holds %d certificates, want exactly one", what, len(cs)), nil)
	}
	c := cs[0]
	if err := c.CheckValidity(now); errors.Is(err, certs.ErrExpired) {
		if expiredOK {
			return nil, nil
		}
		return nil, reject(CodeExpired, fmt.Sprintf("%s %s expired", what, describe(c.Summary())), err)
	}
	if err := c.CheckUsage(usage); err != nil {
		return nil, reject(CodeWrongUsage, fmt.Sprintf("%s %s: %v", what, describe(c.Summary()), err), err)
	}
	return &c, nil
}

func enforceOf(db reapi.DB) string {
	if db.EnforceClientAuthentication == "" {
		return reapi.Disabled // what the cluster does when the field is unset
	}
	return db.EnforceClientAuthentication
}

func keys(es []trustEntry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.key)
	}
	return out
}

func summaries(es []trustEntry) []certs.Summary {
	out := make([]certs.Summary, 0, len(es))
	for _, e := range es {
		out = append(out, e.summary())
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// sourceState is the audit view of a source DB.
func sourceState(pc parseCache, db reapi.DB) audit.State {
	var es []trustEntry
	for _, cc := range db.AuthenticationSSLClientCerts {
		es = append(es, existingEntry(pc, cc.ClientCert))
	}
	return audit.State{TLSMode: string(db.TLSMode), ClientAuthentication: enforceOf(db), TrustedCerts: summaries(es)}
}

// destState is the audit view of one replica source entry.
func destState(pc parseCache, rs reapi.ReplicaSource) audit.State {
	enc := rs.Encryption
	s := audit.State{Encryption: &enc, LinkStatus: rs.Status}
	if strings.TrimSpace(rs.ServerCert) != "" {
		sum := existingEntry(pc, rs.ServerCert).summary()
		s.ServerCert = &sum
	}
	return s
}
