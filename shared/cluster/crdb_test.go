package cluster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/infra/simulator"
)

func TestActiveActiveCalls(t *testing.T) {
	const guid = "552bbccb-99f3-4142-bd17-93d245f0bc79"
	s := startSim(t, simulator.Options{})
	h := s.Cluster("east")
	if err := h.AddActiveActive(guid, 1, "north.redis.local"); err != nil {
		t.Fatal(err)
	}
	c := admin(t, s, "east")
	ctx := ctxT(t, 30*time.Second)

	dbs, err := c.ListDBs(ctx, "uid", "crdt", "crdt_guid")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range dbs {
		found = found || d.UID == 1 && d.CRDT && d.CRDTGUID == guid
	}
	if !found {
		t.Errorf("ListDBs does not show db 1 as the Active-Active instance of %s: %+v", guid, dbs)
	}

	reports, err := c.CRDBHealth(ctx, guid)
	if err != nil || len(reports) != 1 || reports[0].ConnectionError != "" {
		t.Fatalf("CRDBHealth: %+v, %v; want one report without connection error", reports, err)
	}
	if _, err := c.CRDBHealth(ctx, "no-such-guid"); err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "not found") {
		t.Errorf("CRDBHealth of an unknown guid: %v, want a not-found error", err)
	}

	task, err := c.ForceUpdateCRDB(ctx, guid, 10*time.Millisecond)
	if err != nil || task.Status != "finished" || task.ID == "" {
		t.Fatalf("ForceUpdateCRDB: %+v, %v; want a finished task", task, err)
	}
	if _, forced, _ := h.ActiveActiveState(guid); forced != 1 {
		t.Errorf("%d force updates reached the simulator, want 1", forced)
	}

	if err := h.SetActiveActivePeerReachable(guid, "north.redis.local", false); err != nil {
		t.Fatal(err)
	}
	reports, err = c.CRDBHealth(ctx, guid)
	if err != nil || len(reports) != 1 || !strings.Contains(reports[0].ConnectionError, "north.redis.local") {
		t.Errorf("CRDBHealth with north unreachable: %+v, %v; want its connection error", reports, err)
	}
	_, err = c.ForceUpdateCRDB(ctx, guid, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "north.redis.local") || !strings.Contains(err.Error(), "failed") {
		t.Errorf("ForceUpdateCRDB with north unreachable: %v; want a failed task naming north", err)
	}
	if _, forced, _ := h.ActiveActiveState(guid); forced != 1 {
		t.Errorf("a failed force update was applied: %d", forced)
	}
	if _, err := c.ForceUpdateCRDB(ctx, "", time.Millisecond); err == nil {
		t.Error("ForceUpdateCRDB without a guid: no error")
	}
}
