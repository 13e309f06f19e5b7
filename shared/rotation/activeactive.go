package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/audit"
	"github.com/replica-tls/replica-tls/shared/reapi"
)

// Active-Active databases share the cluster's syncer certificate. After the syncer or proxy
// certificate of a cluster changes, "crdb-cli crdb update --crdb-guid <GUID> --force" must run for
// each Active-Active database on it, and "between the two steps, new syncer connections that use the
// 'old' certificate will get rejected" (redis.io, Redis Software > Security > Certificates > Update
// certificates, "Active-Active database certificates"). Its REST form is
// POST /v1/crdbs/{crdb_guid}/updates {"force_update": true} (CRDB modify_request object), followed
// through GET /v1/crdb_tasks/{task_id}.
//
// So a rotation that installs a certificate first finds the cluster's Active-Active databases and
// checks, through each one's health report (GET /v1/crdbs/{crdb_guid}/health_report), that every
// participating cluster is reachable: a force update cannot reach an unreachable one, and the
// database would stay broken. If any is not, the rotation is refused before anything changes. After
// the swap it force-updates each database, one at a time, audited. A retry of the step runs the
// force updates again: they are idempotent, and the step cannot know whether a failed run did them.

// ActiveActive is what a cluster client must also do for rotation to look after Active-Active
// databases (*cluster.Client does). A client without it is taken to host none.
type ActiveActive interface {
	ListDBs(ctx context.Context, fields ...string) ([]reapi.DB, error)
	CRDBHealth(ctx context.Context, guid string) ([]reapi.CRDBHealthReport, error)
	ForceUpdateCRDB(ctx context.Context, guid string, poll time.Duration) (reapi.CRDBTask, error)
}

// Audit step and error code of the Active-Active work.
const (
	AuditActiveActive = "rotation-active-active-update" // setSecret: one force update after the swap
	// CodeActiveActiveUnreachable refuses a rotation on a cluster whose Active-Active database has
	// a participating cluster that cannot be reached.
	CodeActiveActiveUnreachable = "active_active_unreachable"
)

// activeActiveError is a failure the audit event names with its own code.
type activeActiveError struct {
	code string
	err  error
}

func (e *activeActiveError) Error() string { return e.err.Error() }
func (e *activeActiveError) Unwrap() error { return e.err }

// activeActivePoll is how often a force update's task is polled.
const activeActivePoll = 500 * time.Millisecond

// activeActivePlan is what setSecret found before changing anything: the force updates to run
// after the swap.
type activeActivePlan struct {
	api   ActiveActive
	guids []string
}

// checkActiveActive is setSecret's first act: it finds the Active-Active databases on the rotated
// cluster and checks every participating cluster of each is reachable, refusing the rotation
// otherwise. Nothing is changed.
func (r *Rotator) checkActiveActive(ctx context.Context, req *request, res *Result) error {
	aa, guids, err := r.activeActiveDBs(ctx, req, res)
	if err != nil {
		return err
	}
	req.aa = &activeActivePlan{api: aa, guids: guids}
	return nil
}

func (r *Rotator) activeActiveDBs(ctx context.Context, req *request, res *Result) (ActiveActive, []string, error) {
	api, err := r.cfg.Registry.Client(ctx, req.cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("client for cluster %s: %w", req.cluster, err)
	}
	aa, ok := api.(ActiveActive)
	if !ok {
		return nil, nil, nil
	}
	res.Calls++
	dbs, err := aa.ListDBs(ctx, "uid", "crdt", "crdt_guid")
	if err != nil {
		return nil, nil, fmt.Errorf("find the Active-Active databases of %s before changing its %s certificate: %w", req.cluster, req.kind, err)
	}
	var guids []string
	for _, d := range dbs {
		if d.CRDT && d.CRDTGUID != "" && !slices.Contains(guids, d.CRDTGUID) {
			guids = append(guids, d.CRDTGUID)
		}
	}
	slices.Sort(guids)
	for _, g := range guids {
		res.Calls++
		reports, err := aa.CRDBHealth(ctx, g)
		if err != nil {
			return nil, nil, &activeActiveError{code: CodeActiveActiveUnreachable, err: fmt.Errorf(
				"cannot check that the participating clusters of Active-Active database %s on %s are reachable, so its configuration could not be updated after the %s certificate changes; nothing changed: %w", g, req.cluster, req.kind, err)}
		}
		var down []string
		for _, rep := range reports {
			if rep.ConnectionError != "" {
				down = append(down, clip(rep.ConnectionError))
			}
		}
		if len(reports) == 0 {
			down = append(down, "the health report is empty")
		}
		if len(down) > 0 {
			return nil, nil, &activeActiveError{code: CodeActiveActiveUnreachable, err: fmt.Errorf(
				"Active-Active database %s on %s has a participating cluster that cannot be reached (%s): after a new %s certificate its syncer connections would be rejected until a force update reaches every cluster; nothing changed, rotate again once they are reachable",
				g, req.cluster, strings.Join(down, "; "), req.kind)}
		}
	}
	return aa, guids, nil
}

// forceUpdateActiveActive force-updates each Active-Active database after the swap, one at a time,
// each audited fail-closed.
func (r *Rotator) forceUpdateActiveActive(ctx context.Context, req *request, res *Result) error {
	if req.aa == nil || len(req.aa.guids) == 0 {
		return nil
	}
	aa := req.aa.api
	var errs []error
	for _, g := range req.aa.guids {
		details := map[string]any{"crdb_guid": g}
		if err := r.started(ctx, req, AuditActiveActive, details); err != nil {
			return err
		}
		res.Calls++
		res.Writes++
		task, err := aa.ForceUpdateCRDB(ctx, g, activeActivePoll)
		if err != nil {
			errs = append(errs, r.outcomeEvent(ctx, req, AuditActiveActive, audit.Failed, fmt.Errorf(
				"update Active-Active database %s on %s after its new %s certificate (its peers reject new syncer connections until this succeeds; a retry of the step runs it again): %w", g, req.cluster, req.kind, err), details))
			continue
		}
		details["task_id"] = task.ID
		if err := r.outcomeEvent(ctx, req, AuditActiveActive, audit.Succeeded, nil, details); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
