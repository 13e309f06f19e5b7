package rotation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/certs"
	"github.com/replica-tls/replica-tls/shared/reapi"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/secretstore"
)

// maxParallel bounds how many destination databases a proxy rotation updates at once.
const maxParallel = 8

// ---- createSecret ----

// create stores a new key and certificate, with the profile of the current one, as the AWSPENDING
// version named by the token; nothing when that version already holds them.
func (r *Rotator) create(ctx context.Context, req *request, res *Result) error {
	if req.state == tokenCurrent {
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Skipped, nil, map[string]any{"reason": "the token is AWSCURRENT: this rotation is finished"})
	}
	certPEM, _, err := r.cfg.Secrets.CertWithKey(ctx, req.cluster, req.kind, req.Token)
	switch {
	case err == nil:
		req.pending = summaryOf(certPEM)
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Skipped, nil, map[string]any{"reason": "the pending version already holds a certificate and its key"})
	case errors.Is(err, secretstore.ErrInvalid):
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Rejected, reject(CodeInvalidPending, fmt.Sprintf(
			"pending version %s of %s holds no usable certificate and key (%v): cancel this rotation (remove its AWSPENDING stage) and rotate again",
			req.Token, req.name, err)), nil)
	case !errors.Is(err, secretstore.ErrNotFound):
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Failed, fmt.Errorf("read pending version %s of %s: %w", req.Token, req.name, err), nil)
	}
	profile, err := r.profile(ctx, req)
	if err != nil {
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Failed, err, nil)
	}
	kp, err := certs.Generate(profile)
	if err != nil {
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Failed, fmt.Errorf("generate the new %s certificate of %s: %w", req.kind, req.cluster, err), nil)
	}
	sum := kp.Cert.Summary()
	req.pending = &sum
	if err := r.started(ctx, req, AuditCreate, nil); err != nil {
		return err
	}
	_, err = r.cfg.Secrets.PutCert(ctx, req.cluster, req.kind, secretstore.PutCert{
		Certificate: kp.CertPEM, PrivateKey: kp.KeyPEM, Token: req.Token, Stages: []string{secretstore.StagePending},
	})
	if err != nil {
		return r.outcomeEvent(ctx, req, AuditCreate, audit.Failed, fmt.Errorf("store the new certificate as pending version %s of %s: %w", req.Token, req.name, err), nil)
	}
	res.Outcome = audit.Succeeded
	return r.outcomeEvent(ctx, req, AuditCreate, audit.Succeeded, nil, map[string]any{
		"validity_days": int(profile.Validity.Hours() / 24), "key_type": string(profile.KeyType),
	})
}

// profile is the new certificate's profile: the current certificate's (FQDN, organization, extra
// names), else a Redis Enterprise profile for the cluster's FQDN; always the configured validity and
// key type, valid from now.
func (r *Rotator) profile(ctx context.Context, req *request) (certs.Profile, error) {
	kind := certs.KindSyncer
	if req.kind == secretstore.Proxy {
		kind = certs.KindProxy
	}
	var p certs.Profile
	cur, err := r.cfg.Secrets.Cert(ctx, req.cluster, req.kind, secretstore.StageCurrent)
	if err != nil && !errors.Is(err, secretstore.ErrNotFound) && !errors.Is(err, secretstore.ErrInvalid) {
		return certs.Profile{}, fmt.Errorf("read the current %s certificate of %s: %w", req.kind, req.cluster, err)
	}
	var c certs.Cert
	if err == nil {
		c, err = certs.ParseOne(cur.Certificate)
	}
	if err == nil {
		p, err = certs.ProfileOf(c)
	}
	if err == nil && p.Kind != kind {
		err = fmt.Errorf("the current certificate has the profile of a %s certificate", p.Kind)
	}
	if err != nil {
		// The current certificate cannot serve as a model: issue one for the cluster's own name.
		fqdn, ferr := r.clusterFQDN(ctx, req.cluster)
		if ferr != nil {
			return certs.Profile{}, fmt.Errorf("profile of the new %s certificate of %s: current certificate unusable (%v), and %w", req.kind, req.cluster, err, ferr)
		}
		r.cfg.Logger.WarnContext(ctx, "rotation: current certificate unusable as a model, using the cluster FQDN", "secret", req.name, "reason", audit.Redact(err.Error()))
		p = certs.Profile{FQDN: fqdn, Kind: kind}
	}
	p.NotBefore = r.cfg.Now()
	p.Validity = r.cfg.Settings.Validity
	p.KeyType = r.cfg.Settings.KeyType
	return p, nil
}

// clusterFQDN reads the cluster's FQDN (the cluster object's name).
func (r *Rotator) clusterFQDN(ctx context.Context, name string) (string, error) {
	api, err := r.cfg.Registry.Client(ctx, name)
	if err != nil {
		return "", fmt.Errorf("client for cluster %s: %w", name, err)
	}
	cl, err := api.GetCluster(ctx)
	if err != nil {
		return "", fmt.Errorf("read cluster %s: %w", name, err)
	}
	if cl.Name == "" {
		return "", fmt.Errorf("cluster %s reports no name (FQDN)", name)
	}
	return cl.Name, nil
}

// ---- setSecret ----

// setSyncer makes every source database replicating to the cluster trust the pending certificate,
// verifies it by reading each one back, and only then installs the certificate on the cluster.
func (r *Rotator) setSyncer(ctx context.Context, req *request, res *Result) error {
	if req.state == tokenCurrent {
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditSet, audit.Skipped, nil, map[string]any{"reason": "the token is AWSCURRENT: this rotation is finished"})
	}
	fail := func(err error) error { return r.outcomeEvent(ctx, req, AuditSet, audit.Failed, err, nil) }
	certPEM, keyPEM, pending, err := r.pendingPair(ctx, req)
	if err != nil {
		return fail(err)
	}
	// Before anything changes: Active-Active databases here need every participant reachable.
	if err := r.checkActiveActive(ctx, req, res); err != nil {
		return fail(err)
	}
	fleet, state, err := r.loadFleet(ctx, req, res)
	if err != nil {
		return fail(err)
	}
	var links []reconcile.Link
	for _, l := range fleet.Links() {
		if l.Dest.Cluster != req.cluster {
			continue
		}
		links = append(links, l)
		if l.Err != nil {
			res.Links = append(res.Links, LinkState{Link: l.String(), Error: audit.Redact(l.Err.Error())})
			return fail(fmt.Errorf("link %s cannot be resolved, so its source cannot be made to trust the new certificate; not installing it: %w", l, l.Err))
		}
	}

	// Trust first: reconciling plans every destination cluster's AWSPENDING syncer certificate into the
	// source trust lists (the current one stays).
	rep, err := r.cfg.Reconciler.ReconcileCluster(ctx, fleet, req.cluster, r.cfg.Policy)
	res.Calls, res.Writes = res.Calls+rep.Calls, res.Writes+rep.Writes
	var errs []error
	for _, lr := range rep.Links {
		if lr.Link.DestinationCluster != req.cluster {
			continue // links where this cluster is the source do not need this certificate
		}
		ls := LinkState{Link: linkName(lr.Link), Status: lr.Status, LastError: audit.Redact(lr.LastError)}
		if lr.Err != nil {
			ls.Error = audit.Redact(lr.Err.Error())
			errs = append(errs, lr.Err)
		}
		res.Links = append(res.Links, ls)
	}
	if len(errs) > 0 {
		return fail(fmt.Errorf("make the sources of %s trust the new certificate; not installing it: %w", req.cluster, errors.Join(errs...)))
	}
	if err != nil && len(rep.Links) == 0 {
		return fail(fmt.Errorf("make the sources of %s trust the new certificate; not installing it: %w", req.cluster, err))
	}
	if err := r.verifyTrust(ctx, req, res, links, pending); err != nil {
		return fail(err)
	}

	// Swap second.
	if err := r.install(ctx, req, res, state.SyncerCert, certPEM, keyPEM, true); err != nil {
		return fail(err)
	}
	res.Outcome = audit.Succeeded
	return r.outcomeEvent(ctx, req, AuditSet, audit.Succeeded, nil, map[string]any{"links": len(links)})
}

// verifyTrust reads back every source database of links and checks it trusts the certificate with
// fingerprint fp.
func (r *Rotator) verifyTrust(ctx context.Context, req *request, res *Result, links []reconcile.Link, fp string) error {
	var sources []reconcile.LinkEnd
	for _, l := range links {
		if !slices.Contains(sources, l.Source) {
			sources = append(sources, l.Source)
		}
	}
	var missing []string
	for _, src := range sources {
		api, err := r.cfg.Registry.Client(ctx, src.Cluster)
		if err != nil {
			return fmt.Errorf("verify trust: client for cluster %s: %w", src.Cluster, err)
		}
		res.Calls++
		db, err := api.GetDB(ctx, src.DB, "uid", "authentication_ssl_client_certs")
		if err != nil {
			return fmt.Errorf("verify trust: read source %s: %w", src, err)
		}
		trusted := slices.ContainsFunc(db.AuthenticationSSLClientCerts, func(cc reapi.ClientCert) bool {
			c, err := certs.ParseOne(cc.ClientCert)
			return err == nil && c.Fingerprint == fp
		})
		if !trusted {
			missing = append(missing, src.String())
		}
	}
	details := map[string]any{"source_databases": len(sources)}
	if len(missing) > 0 {
		err := fmt.Errorf("source database(s) %s do not trust the pending certificate sha256:%s; not installing it", strings.Join(missing, ", "), fp)
		return r.outcomeEvent(ctx, req, AuditTrust, audit.Failed, err, details)
	}
	return r.outcomeEvent(ctx, req, AuditTrust, audit.Succeeded, nil, details)
}

// setProxy installs the pending proxy certificate on the cluster (connections already established
// survive it), then at once points every destination entry replicating from it at that certificate.
func (r *Rotator) setProxy(ctx context.Context, req *request, res *Result) error {
	if req.state == tokenCurrent {
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditSet, audit.Skipped, nil, map[string]any{"reason": "the token is AWSCURRENT: this rotation is finished"})
	}
	fail := func(err error) error { return r.outcomeEvent(ctx, req, AuditSet, audit.Failed, err, nil) }
	certPEM, keyPEM, _, err := r.pendingPair(ctx, req)
	if err != nil {
		return fail(err)
	}
	// Before anything changes: Active-Active databases here need every participant reachable.
	if err := r.checkActiveActive(ctx, req, res); err != nil {
		return fail(err)
	}
	c, err := certs.ParseOne(certPEM)
	if err == nil {
		err = c.CheckValidity(r.cfg.Now())
	}
	if err == nil {
		err = c.CheckUsage(x509.ExtKeyUsageServerAuth)
	}
	if err != nil {
		return r.outcomeEvent(ctx, req, AuditSet, audit.Rejected, reject(CodeInvalidPending, fmt.Sprintf("pending proxy certificate of %s cannot be served: %v", req.cluster, err)), nil)
	}
	// Everything is read and checked before the swap, so that the window between the swap and the last
	// destination update holds nothing but those updates.
	fleet, state, err := r.loadFleet(ctx, req, res)
	if err != nil {
		return fail(err)
	}
	if len(fleet.Errors) > 0 {
		var names []string
		for n := range fleet.Errors {
			names = append(names, n)
		}
		slices.Sort(names)
		return fail(fmt.Errorf("cluster(s) %s could not be read: a database there may replicate from %s and would lose its link; not installing the new certificate", strings.Join(names, ", "), req.cluster))
	}
	var dests []reconcile.LinkEnd
	nLinks := 0
	for _, l := range fleet.Links() {
		if l.Err != nil && hostOf(l.Host, state.FQDN) {
			return fail(fmt.Errorf("link %s points at cluster %s but cannot be resolved; not installing the new certificate: %w", l, req.cluster, l.Err))
		}
		if l.Err != nil || l.Source.Cluster != req.cluster {
			continue
		}
		nLinks++
		if !slices.Contains(dests, l.Dest) {
			dests = append(dests, l.Dest)
		}
	}

	// Pre-flight, before anything changes: plan every destination update as if the cluster presented
	// the pending certificate already, and have the destination clusters validate it (dry_run). This
	// also reads, once, everything the real updates need, so that only the updates sit in the window.
	presentedBefore := state.ProxyCert
	state.ProxyCert = certPEM
	dry := r.cfg.Policy
	dry.DryRun = true
	sequential := false
	for _, d := range dests {
		ref := reconcile.LinkRef{DestCluster: d.Cluster, DestDB: d.DB, SourceCluster: req.cluster}
		rep, err := r.cfg.Reconciler.ReconcileLink(ctx, fleet, ref, dry)
		res.Calls += rep.Calls
		if err != nil {
			state.ProxyCert = presentedBefore
			return fail(fmt.Errorf("validate the destination updates before installing the new certificate; nothing changed: %w", err))
		}
		for _, lr := range rep.Links {
			// A source that needs changing too is shared by links: update those one at a time.
			sequential = sequential || lr.Source.Outcome == audit.Planned
		}
	}

	swapping := !certs.SameCert(presentedBefore, certPEM) // false on a retry after the swap
	if err := r.install(ctx, req, res, presentedBefore, certPEM, keyPEM, false); err != nil {
		return fail(err)
	}
	swapped := r.cfg.Now()

	// The swap is done: update every destination at once (each destination database is its own run;
	// the snapshot now shows the cluster presenting the pending certificate, which the destination
	// planner trusts because it is a staged version of the proxy secret).
	var g errgroup.Group
	g.SetLimit(maxParallel)
	if sequential {
		g.SetLimit(1)
	}
	var mu sync.Mutex
	var errs []error
	for _, d := range dests {
		g.Go(func() error {
			ref := reconcile.LinkRef{DestCluster: d.Cluster, DestDB: d.DB, SourceCluster: req.cluster}
			rep, err := r.cfg.Reconciler.ReconcileLink(ctx, fleet, ref, r.cfg.Policy)
			mu.Lock()
			defer mu.Unlock()
			res.Calls, res.Writes = res.Calls+rep.Calls, res.Writes+rep.Writes
			for _, lr := range rep.Links {
				ls := LinkState{Link: linkName(lr.Link), Status: lr.Status, LastError: audit.Redact(lr.LastError)}
				if lr.Err != nil {
					ls.Error = audit.Redact(lr.Err.Error())
				}
				res.Links = append(res.Links, ls)
			}
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	slices.SortFunc(res.Links, func(a, b LinkState) int { return strings.Compare(a.Link, b.Link) })
	window := r.cfg.Now().Sub(swapped)
	details := map[string]any{"destination_databases": len(dests), "links": nLinks, "window_ms": window.Milliseconds()}
	if err := errors.Join(errs...); err != nil {
		return fail(r.outcomeEvent(ctx, req, AuditUpdate, audit.Failed,
			fmt.Errorf("point the destinations of %s at the new certificate (a retry finishes it): %w", req.cluster, err), details))
	}
	if swapping {
		res.WindowMs = window.Milliseconds()
	}
	if err := r.outcomeEvent(ctx, req, AuditUpdate, audit.Succeeded, nil, details); err != nil {
		return fail(err)
	}
	if err := r.checkPresented(ctx, req, res, certPEM); err != nil {
		return fail(err)
	}
	res.Outcome = audit.Succeeded
	return r.outcomeEvent(ctx, req, AuditSet, audit.Succeeded, nil, map[string]any{"links": nLinks})
}

// install puts the pending certificate and key on the cluster, audited fail-closed; nothing when the
// cluster already presents it. verify reads the cluster back at once.
func (r *Rotator) install(ctx context.Context, req *request, res *Result, presented, certPEM, keyPEM string, verify bool) error {
	if certs.SameCert(presented, certPEM) {
		if err := r.outcomeEvent(ctx, req, AuditInstall, audit.Skipped, nil, map[string]any{"reason": "the cluster already presents the pending certificate"}); err != nil {
			return err
		}
		return r.forceUpdateActiveActive(ctx, req, res)
	}
	inst, err := r.installer(ctx, req.cluster)
	if err != nil {
		return r.outcomeEvent(ctx, req, AuditInstall, audit.Failed, err, nil)
	}
	if err := r.started(ctx, req, AuditInstall, nil); err != nil {
		return err
	}
	res.Calls++
	res.Writes++
	u := reapi.CertUpdate{Name: reapi.CertSyncer, Certificate: certPEM, Key: keyPEM}
	if req.kind == secretstore.Proxy {
		u.Name = reapi.CertProxy
	}
	if err := inst.UpdateCertificate(ctx, u); err != nil {
		return r.outcomeEvent(ctx, req, AuditInstall, audit.Failed, fmt.Errorf("install the pending %s certificate on %s: %w", req.kind, req.cluster, err), nil)
	}
	if verify {
		if err := r.checkPresented(ctx, req, res, certPEM); err != nil {
			return r.outcomeEvent(ctx, req, AuditInstall, audit.Failed, err, nil)
		}
	}
	if err := r.outcomeEvent(ctx, req, AuditInstall, audit.Succeeded, nil, nil); err != nil {
		return err
	}
	return r.forceUpdateActiveActive(ctx, req, res)
}

// checkPresented reads the cluster and checks it presents certPEM as the rotated certificate.
func (r *Rotator) checkPresented(ctx context.Context, req *request, res *Result, certPEM string) error {
	api, err := r.cfg.Registry.Client(ctx, req.cluster)
	if err != nil {
		return fmt.Errorf("client for cluster %s: %w", req.cluster, err)
	}
	res.Calls++
	cl, err := api.GetCluster(ctx)
	if err != nil {
		return fmt.Errorf("read back cluster %s: %w", req.cluster, err)
	}
	if got := presentedOf(cl, req.kind); !certs.SameCert(got, certPEM) {
		return reject(CodeNotInstalled, fmt.Sprintf("cluster %s presents %s as its %s certificate, not the pending %s", req.cluster, describe(got), req.kind, describe(certPEM)))
	}
	return nil
}

func (r *Rotator) installer(ctx context.Context, name string) (CertInstaller, error) {
	api, err := r.cfg.Registry.Client(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("client for cluster %s: %w", name, err)
	}
	inst, ok := api.(CertInstaller)
	if !ok {
		return nil, fmt.Errorf("the client for cluster %s cannot update certificates", name)
	}
	return inst, nil
}

// ---- testSecret ----

// test checks that the cluster presents the pending certificate and that every link using it is
// in-sync without error, waiting a bounded time for the links.
func (r *Rotator) test(ctx context.Context, req *request, res *Result) error {
	if req.state == tokenCurrent {
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditTest, audit.Skipped, nil, map[string]any{"reason": "the token is AWSCURRENT: this rotation is finished"})
	}
	if copied := r.copyOfCurrent(ctx, req); copied != nil {
		req.pending = summaryOf(copied.Certificate)
		res.Outcome = audit.Skipped
		res.Message = "configuration test: " + reasonConfigTest
		return r.outcomeEvent(ctx, req, AuditTest, audit.Skipped, nil, map[string]any{
			"reason": reasonConfigTest, "configuration_test": true, "current_version_id": copied.VersionID,
		})
	}
	fail := func(err error) error { return r.outcomeEvent(ctx, req, AuditTest, audit.Failed, err, nil) }
	certPEM, _, _, err := r.pendingPair(ctx, req)
	if err != nil {
		return fail(err)
	}
	fleet, state, err := r.loadFleet(ctx, req, res)
	if err != nil {
		return fail(err)
	}
	if got := presentedOf(reapi.Cluster{SyncerCertificate: state.SyncerCert, ProxyCertificate: state.ProxyCert}, req.kind); !certs.SameCert(got, certPEM) {
		return fail(reject(CodeNotInstalled, fmt.Sprintf("cluster %s presents %s as its %s certificate, not the pending %s: run setSecret first", req.cluster, describe(got), req.kind, describe(certPEM))))
	}
	var links []reconcile.Link
	for _, l := range fleet.Links() {
		uses := l.Dest.Cluster == req.cluster
		if req.kind == secretstore.Proxy {
			uses = l.Err == nil && l.Source.Cluster == req.cluster
		}
		if !uses {
			continue
		}
		if l.Err != nil {
			return fail(fmt.Errorf("link %s cannot be resolved: %w", l, l.Err))
		}
		links = append(links, l)
	}
	deadline := r.cfg.Now().Add(r.cfg.Settings.TestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Add(-2*time.Second).Before(deadline) {
		deadline = d.Add(-2 * time.Second) // leave time to report
	}
	dbs := snapshotDBs(fleet)
	for {
		states, bad := linkStates(links, dbs)
		res.Links = states
		if len(bad) == 0 {
			res.Outcome = audit.Succeeded
			return r.outcomeEvent(ctx, req, AuditTest, audit.Succeeded, nil, map[string]any{"links": len(links)})
		}
		if !r.cfg.Now().Add(r.cfg.Settings.TestPoll).Before(deadline) {
			return fail(fmt.Errorf("%d of %d link(s) using the new %s certificate of %s not in sync within %s: %s",
				len(bad), len(links), req.kind, req.cluster, r.cfg.Settings.TestTimeout, strings.Join(bad, "; ")))
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("wait for the links of %s: %w", req.cluster, ctx.Err()))
		case <-time.After(r.cfg.Settings.TestPoll):
		}
		if dbs, err = r.readDestinations(ctx, res, links); err != nil {
			return fail(err)
		}
	}
}

// reasonConfigTest is why a configuration test is skipped (audit details and Result.Message).
const reasonConfigTest = "the pending version is a copy of AWSCURRENT (same certificate, same key or none), " +
	"as Secrets Manager stages it to test the rotation configuration: no new certificate, nothing changed, nothing to test"

// copyOfCurrent recognises Secrets Manager's configuration test and returns the AWSCURRENT version
// the pending one copies; nil means a rotation's pending certificate, to be tested in full.
//
// When rotation is enabled without rotating at once (RotateSecret with RotateImmediately false, as
// the template does), Secrets Manager "tests the rotation configuration by running the testSecret
// step of the Lambda rotation function. The test creates an AWSPENDING version of the secret and
// then removes it." What we rely on: that version holds a copy of the AWSCURRENT value, and no other
// step runs for its token. A copy of a recorded certificate has no key, which the full test would
// refuse (invalid_pending_certificate), making enabling rotation fail.
//
// The recognition cannot skip a real rotation's test: createSecret never stores a copy (it always
// generates a new key, or keeps what the version already holds), so the pending version of a
// rotation that ran createSecret never equals AWSCURRENT. A version that does equal it rotates
// nothing in: the clusters run on that very certificate already. The certificate and the key (or
// their absence) must match byte for byte; anything unreadable or different is not recognised.
func (r *Rotator) copyOfCurrent(ctx context.Context, req *request) *secretstore.CertVersion {
	cur, err := r.cfg.Secrets.Cert(ctx, req.cluster, req.kind, secretstore.StageCurrent)
	if err != nil || cur.VersionID == "" || cur.VersionID == req.Token {
		return nil
	}
	pend, err := r.cfg.Secrets.Cert(ctx, req.cluster, req.kind, secretstore.StagePending)
	if err != nil || pend.VersionID != req.Token || pend.Certificate != cur.Certificate || pend.HasKey != cur.HasKey {
		return nil
	}
	if cur.HasKey {
		_, curKey, err := r.cfg.Secrets.CertWithKey(ctx, req.cluster, req.kind, cur.VersionID)
		if err != nil {
			return nil
		}
		_, pendKey, err := r.cfg.Secrets.CertWithKey(ctx, req.cluster, req.kind, req.Token)
		if err != nil || pendKey != curKey {
			return nil
		}
	}
	return &cur
}

// snapshotDBs indexes the fleet's databases.
func snapshotDBs(fleet *reconcile.Fleet) map[reconcile.LinkEnd]reapi.DB {
	out := map[reconcile.LinkEnd]reapi.DB{}
	for name, cs := range fleet.Clusters {
		for _, db := range cs.DBs {
			out[reconcile.LinkEnd{Cluster: name, DB: db.UID}] = db
		}
	}
	return out
}

// readDestinations reads the destination databases of links, one list call per cluster.
func (r *Rotator) readDestinations(ctx context.Context, res *Result, links []reconcile.Link) (map[reconcile.LinkEnd]reapi.DB, error) {
	out := map[reconcile.LinkEnd]reapi.DB{}
	var clusters []string
	for _, l := range links {
		if !slices.Contains(clusters, l.Dest.Cluster) {
			clusters = append(clusters, l.Dest.Cluster)
		}
	}
	for _, name := range clusters {
		api, err := r.cfg.Registry.Client(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("client for cluster %s: %w", name, err)
		}
		res.Calls++
		dbs, err := api.ListDBs(ctx, "uid", "replica_sources")
		if err != nil {
			return nil, fmt.Errorf("read the links of cluster %s: %w", name, err)
		}
		for _, db := range dbs {
			out[reconcile.LinkEnd{Cluster: name, DB: db.UID}] = db
		}
	}
	return out, nil
}

// linkStates reports each link's status and lists the ones not in sync (redacted).
func linkStates(links []reconcile.Link, dbs map[reconcile.LinkEnd]reapi.DB) ([]LinkState, []string) {
	var states []LinkState
	var bad []string
	for _, l := range links {
		ls := LinkState{Link: l.String()}
		db, ok := dbs[l.Dest]
		idx := -1
		if ok {
			idx = slices.IndexFunc(db.ReplicaSources, func(rs reapi.ReplicaSource) bool { return l.EntryUID != 0 && rs.UID == l.EntryUID })
			if idx < 0 && l.EntryUID == 0 && l.Entry < len(db.ReplicaSources) {
				idx = l.Entry
			}
		}
		if idx < 0 {
			ls.Error = "replica source entry not found"
			bad = append(bad, l.String()+": entry gone")
			states = append(states, ls)
			continue
		}
		e := db.ReplicaSources[idx]
		ls.Status, ls.LastError = e.Status, audit.Redact(e.LastError)
		if e.Status != reapi.LinkInSync || e.LastError != "" {
			s := fmt.Sprintf("%s: %s", l, orNone(e.Status))
			if ls.LastError != "" {
				s += " (" + ls.LastError + ")"
			}
			bad = append(bad, s)
		}
		states = append(states, ls)
	}
	return states, bad
}

// ---- finishSecret ----

// finish makes the token AWSCURRENT and removes its AWSPENDING stage, once the cluster presents the
// certificate. Re-entrant: a token already AWSCURRENT only loses a leftover AWSPENDING.
func (r *Rotator) finish(ctx context.Context, req *request, res *Result) error {
	fail := func(err error) error { return r.outcomeEvent(ctx, req, AuditFinish, audit.Failed, err, nil) }
	secretID := req.desc.ARN
	if secretID == "" {
		secretID = req.name
	}
	pendingLeft := slices.Contains(req.desc.VersionStages[req.Token], secretstore.StagePending)
	if req.state == tokenCurrent && !pendingLeft {
		res.Outcome = audit.Skipped
		return r.outcomeEvent(ctx, req, AuditFinish, audit.Skipped, nil, map[string]any{"reason": "the token is AWSCURRENT and carries no AWSPENDING: finished"})
	}
	var current string
	if req.state == tokenPending {
		// Never make current a certificate the cluster does not present: its links would break.
		certPEM, _, _, err := r.pendingPair(ctx, req)
		if err != nil {
			return fail(err)
		}
		if err := r.checkPresented(ctx, req, res, certPEM); err != nil {
			return fail(err)
		}
		for id, stages := range req.desc.VersionStages {
			if slices.Contains(stages, secretstore.StageCurrent) {
				current = id
			}
		}
	}
	if err := r.started(ctx, req, AuditFinish, map[string]any{"previous_version_id": current}); err != nil {
		return err
	}
	if req.state == tokenPending {
		if err := r.cfg.Secrets.MoveStage(ctx, secretID, secretstore.StageCurrent, req.Token, current); err != nil {
			return fail(fmt.Errorf("move AWSCURRENT of %s to version %s: %w", req.name, req.Token, err))
		}
	}
	if err := r.cfg.Secrets.RemoveStage(ctx, secretID, secretstore.StagePending, req.Token); err != nil {
		return fail(fmt.Errorf("remove AWSPENDING from version %s of %s: %w", req.Token, req.name, err))
	}
	res.Outcome = audit.Succeeded
	return r.outcomeEvent(ctx, req, AuditFinish, audit.Succeeded, nil, map[string]any{"previous_version_id": current})
}

// ---- helpers ----

// pendingPair reads the pending version's certificate and key; the fingerprint names it.
func (r *Rotator) pendingPair(ctx context.Context, req *request) (certPEM, keyPEM, fingerprint string, err error) {
	certPEM, keyPEM, err = r.cfg.Secrets.CertWithKey(ctx, req.cluster, req.kind, req.Token)
	switch {
	case errors.Is(err, secretstore.ErrNotFound):
		return "", "", "", reject(CodeNoPendingValue, fmt.Sprintf("pending version %s of %s holds no certificate yet: run createSecret first", req.Token, req.name))
	case errors.Is(err, secretstore.ErrInvalid):
		return "", "", "", reject(CodeInvalidPending, fmt.Sprintf("pending version %s of %s: %v", req.Token, req.name, err))
	case err != nil:
		return "", "", "", fmt.Errorf("read pending version %s of %s: %w", req.Token, req.name, err)
	}
	c, err := certs.ParseOne(certPEM)
	if err != nil {
		return "", "", "", reject(CodeInvalidPending, fmt.Sprintf("pending version %s of %s: %v", req.Token, req.name, err))
	}
	s := c.Summary()
	req.pending = &s
	return certPEM, keyPEM, c.Fingerprint, nil
}

// loadFleet reads what the step needs and returns the fleet and the rotated cluster's state. A
// syncer certificate matters only to the sources of the cluster's own databases: with a Resolver
// that is the cluster and the sources its Replica Of entries resolve to through pinned FQDNs. A
// proxy certificate matters to every destination of the cluster's databases, which only the whole
// fleet tells (a source database does not name its replicas).
func (r *Rotator) loadFleet(ctx context.Context, req *request, res *Result) (*reconcile.Fleet, *reconcile.ClusterState, error) {
	var fleet *reconcile.Fleet
	var err error
	complete := false
	if req.kind == secretstore.Syncer && r.cfg.Resolver != nil {
		fleet, complete, err = reconcile.LoadLocalFleet(ctx, r.cfg.Registry, r.cfg.Resolver, []string{req.cluster})
		if err == nil && !complete {
			var names []string
			if names, err = r.cfg.Registry.ClusterNames(ctx); err == nil {
				err = fleet.Extend(ctx, r.cfg.Registry, names)
			}
		}
	} else {
		fleet, err = reconcile.LoadFleet(ctx, r.cfg.Registry, nil)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the clusters: %w", err)
	}
	res.Calls += 2*len(fleet.Clusters) + len(fleet.Errors)
	if ferr, ok := fleet.Errors[req.cluster]; ok {
		if errors.Is(ferr, reconcile.ErrUnknownCluster) {
			return nil, nil, reject(reconcile.CodeUnknownCluster, fmt.Sprintf("cluster %s of secret %s is not registered", req.cluster, req.name))
		}
		return nil, nil, fmt.Errorf("read cluster %s: %w", req.cluster, ferr)
	}
	state, ok := fleet.Clusters[req.cluster]
	if !ok {
		return nil, nil, reject(reconcile.CodeUnknownCluster, fmt.Sprintf("cluster %s of secret %s is not registered", req.cluster, req.name))
	}
	return fleet, state, nil
}

func presentedOf(cl reapi.Cluster, kind secretstore.Kind) string {
	if kind == secretstore.Proxy {
		return cl.ProxyCertificate
	}
	return cl.SyncerCertificate
}

// hostOf reports whether host is fqdn or one of its subdomains.
func hostOf(host, fqdn string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	f := strings.TrimSuffix(strings.ToLower(fqdn), ".")
	return f != "" && (h == f || strings.HasSuffix(h, "."+f))
}

func summaryOf(pemText string) *certs.Summary {
	c, err := certs.ParseOne(pemText)
	if err != nil {
		return nil
	}
	s := c.Summary()
	return &s
}

// describe names a certificate by fingerprint and subject, or says it is missing or unreadable.
func describe(pemText string) string {
	if strings.TrimSpace(pemText) == "" {
		return "no certificate"
	}
	s := summaryOf(pemText)
	if s == nil {
		return "an unparseable certificate"
	}
	return fmt.Sprintf("sha256:%s %q", s.Fingerprint, s.Subject)
}

func linkName(l audit.Link) string {
	return fmt.Sprintf("%s/%d -> %s/%d", l.SourceCluster, l.SourceDatabase, l.DestinationCluster, l.DestinationDB)
}

func orNone(s string) string {
	if s == "" {
		return "(no status)"
	}
	return s
}
