package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/replica-tls/replica-tls/shared/reapi"
)

// CRDBHealth reads the health report of Active-Active database guid
// (GET /v1/crdbs/{crdb_guid}/health_report).
func (c *Client) CRDBHealth(ctx context.Context, guid string) ([]reapi.CRDBHealthReport, error) {
	if guid == "" {
		return nil, fmt.Errorf("read Active-Active health on %s: guid is required", c.name)
	}
	var out []reapi.CRDBHealthReport
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/crdbs/" + url.PathEscape(guid) + "/health_report", decode: into(&out)}); err != nil {
		return nil, fmt.Errorf("read the health of Active-Active database %s on %s: %w", guid, c.name, err)
	}
	return out, nil
}

// ForceUpdateCRDB asks the coordinator to push Active-Active database guid's configuration to every
// instance again (POST /v1/crdbs/{crdb_guid}/updates with force_update), and waits for the task,
// polling every poll (<= 0: one second) within ctx. A failed task is an error naming the clusters
// that failed.
func (c *Client) ForceUpdateCRDB(ctx context.Context, guid string, poll time.Duration) (reapi.CRDBTask, error) {
	if guid == "" {
		return reapi.CRDBTask{}, fmt.Errorf("force-update Active-Active database on %s: guid is required", c.name)
	}
	if poll <= 0 {
		poll = time.Second
	}
	fail := func(err error) (reapi.CRDBTask, error) {
		return reapi.CRDBTask{}, fmt.Errorf("force-update Active-Active database %s on %s: %w", guid, c.name, err)
	}
	var t reapi.CRDBTask
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/crdbs/" + url.PathEscape(guid) + "/updates",
		body: reapi.CRDBModifyRequest{ForceUpdate: true}, write: true, decode: into(&t)})
	if err != nil {
		return fail(err)
	}
	if t.ID == "" {
		return fail(errors.New("the answer names no task to follow"))
	}
	for t.Status != reapi.CRDBTaskFinished {
		if t.Status == reapi.CRDBTaskFailed {
			msg := "no error given"
			if len(t.Errors) > 0 {
				msg = ""
				for i, e := range t.Errors {
					if i > 0 {
						msg += "; "
					}
					msg += fmt.Sprintf("%s: %s (%s)", e.ClusterName, c.scrub(e.Description, maxMessageLen), e.ErrorCode)
				}
			}
			return fail(fmt.Errorf("task %s failed: %s", t.ID, msg))
		}
		if err := c.pause(ctx, poll); err != nil {
			return fail(fmt.Errorf("task %s still %q: %w", t.ID, t.Status, err))
		}
		id := t.ID
		if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/crdb_tasks/" + url.PathEscape(id), decode: into(&t)}); err != nil {
			return fail(fmt.Errorf("follow task %s: %w", id, err))
		}
		if t.ID == "" {
			t.ID = id
		}
	}
	return t, nil
}
