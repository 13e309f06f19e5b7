package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// ListDBs lists the cluster's databases (GET /v1/bdbs). fields, when given, limits the keys the
// cluster returns.
func (c *Client) ListDBs(ctx context.Context, fields ...string) ([]reapi.DB, error) {
	q, err := fieldsQuery(fields)
	if err != nil {
		return nil, fmt.Errorf("list dbs on %s: %w", c.name, err)
	}
	var dbs []reapi.DB
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/bdbs", query: q, decode: listInto(&dbs, sharedCerts())}); err != nil {
		return nil, fmt.Errorf("list dbs on %s: %w", c.name, err)
	}
	return dbs, nil
}

// sharedCerts makes the databases of one list share the text of equal certificates. A fleet's trust
// lists and replica sources repeat the same few certificates (every database that trusts a cluster's
// syncer holds the same PEM), so a list of thousands keeps one copy of each instead of thousands.
func sharedCerts() func(*reapi.DB) {
	seen := map[string]string{}
	share := func(s *string) {
		if *s == "" {
			return
		}
		if v, ok := seen[*s]; ok {
			*s = v
			return
		}
		seen[*s] = *s
	}
	return func(db *reapi.DB) {
		for i := range db.AuthenticationSSLClientCerts {
			share(&db.AuthenticationSSLClientCerts[i].ClientCert)
		}
		for i := range db.ReplicaSources {
			share(&db.ReplicaSources[i].ServerCert)
			share(&db.ReplicaSources[i].ClientCert)
		}
	}
}

// GetDB reads one database (GET /v1/bdbs/{uid}).
func (c *Client) GetDB(ctx context.Context, uid int, fields ...string) (reapi.DB, error) {
	if uid <= 0 {
		return reapi.DB{}, fmt.Errorf("get db %d on %s: db uid must be positive", uid, c.name)
	}
	q, err := fieldsQuery(fields)
	if err != nil {
		return reapi.DB{}, fmt.Errorf("get db %d on %s: %w", uid, c.name, err)
	}
	var db reapi.DB
	if err := c.do(ctx, call{method: http.MethodGet, path: dbPath(uid), query: q, decode: into(&db)}); err != nil {
		return reapi.DB{}, fmt.Errorf("get db %d on %s: %w", uid, c.name, err)
	}
	return db, nil
}

// UpdateDB sends a partial update (PUT /v1/bdbs/{uid}); only the fields set in upd are sent. With
// dryRun the cluster only validates it. It returns the DB as the cluster reports it after accepting
// the change, typically still active-change-pending: see WaitForDB.
func (c *Client) UpdateDB(ctx context.Context, uid int, upd reapi.DBUpdate, dryRun bool) (reapi.DB, error) {
	what := "update"
	q := ""
	if dryRun {
		what, q = "validate update of", "dry_run=true"
	}
	if uid <= 0 {
		return reapi.DB{}, fmt.Errorf("%s db %d on %s: db uid must be positive", what, uid, c.name)
	}
	if upd.Empty() {
		return reapi.DB{}, fmt.Errorf("%s db %d on %s: the update changes nothing", what, uid, c.name)
	}
	var db reapi.DB
	if err := c.do(ctx, call{method: http.MethodPut, path: dbPath(uid), query: q, body: upd, decode: into(&db), write: !dryRun}); err != nil {
		return reapi.DB{}, fmt.Errorf("%s db %d on %s: %w", what, uid, c.name, err)
	}
	return db, nil
}

// WaitForDB waits until a change to database uid is applied. With an actionUID it first polls
// that action until it is done (a failed, cancelled or aborted action is an error carrying its text,
// wherever the action puts it; a 404 means it finished and was already reaped); then it polls the
// database until its status is no longer active-change-pending and returns it. poll <= 0 means one second. The wait is bounded by
// ctx: when the next poll would pass its deadline, WaitForDB gives up at once.
func (c *Client) WaitForDB(ctx context.Context, uid int, actionUID string, poll time.Duration) (reapi.DB, error) {
	if poll <= 0 {
		poll = time.Second
	}
	fail := func(err error) (reapi.DB, error) {
		return reapi.DB{}, fmt.Errorf("wait for db %d on %s: %w", uid, c.name, err)
	}
	if uid <= 0 {
		return fail(errors.New("db uid must be positive"))
	}
	if actionUID != "" {
		for {
			a, err := c.GetAction(ctx, actionUID)
			var apiErr *reapi.Error
			if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
				break
			}
			if err != nil {
				return fail(err)
			}
			if done, ok := a.Done(); done {
				if ok {
					break
				}
				return fail(fmt.Errorf("action %s %s: %s", actionUID, a.Status, c.scrub(orText(a.FailureText(), "no error text"), maxMessageLen)))
			}
			if err := c.pause(ctx, poll); err != nil {
				return fail(fmt.Errorf("action %s still %q: %w", actionUID, a.Status, err))
			}
		}
	}
	for {
		db, err := c.GetDB(ctx, uid)
		if err != nil {
			return fail(err)
		}
		// An empty answer (uid 0) says nothing about the change: poll again.
		if db.UID != 0 && db.Status != reapi.DBStatusChangePending {
			return db, nil
		}
		if err := c.pause(ctx, poll); err != nil {
			return fail(fmt.Errorf("db still %q: %w", db.Status, err))
		}
	}
}

// pause sleeps d between polls, refusing up front when that would pass the ctx deadline.
func (c *Client) pause(ctx context.Context, d time.Duration) error {
	if deadline, ok := ctx.Deadline(); ok && !c.now().Add(d).Before(deadline) {
		return fmt.Errorf("next poll in %s would pass the context deadline (%w)", d, context.DeadlineExceeded)
	}
	return c.sleep(ctx, d)
}

func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func dbPath(uid int) string { return "/v1/bdbs/" + strconv.Itoa(uid) }

// fieldsQuery renders fields as "fields=a,b" with literal commas, as the API documents it.
func fieldsQuery(fields []string) (string, error) {
	if len(fields) == 0 {
		return "", nil
	}
	esc := make([]string, len(fields))
	for i, f := range fields {
		if f == "" || strings.Contains(f, ",") {
			return "", fmt.Errorf("invalid field name %q", f)
		}
		esc[i] = url.QueryEscape(f)
	}
	return "fields=" + strings.Join(esc, ","), nil
}
