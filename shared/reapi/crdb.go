package reapi

// Active-Active (CRDB) objects, as far as certificate rotation needs them (redis.io, Redis Software
// REST API: CRDB modify_request, CRDB task and CRDB health report objects).

// CRDBModifyRequest is the body of POST /v1/crdbs/{crdb_guid}/updates. ForceUpdate "forces the
// configuration update and increments the configuration version even if there is no change": the
// REST form of `crdb-cli crdb update --crdb-guid <GUID> --force`, which must follow a syncer or
// proxy certificate change on a cluster hosting Active-Active databases.
type CRDBModifyRequest struct {
	ForceUpdate bool `json:"force_update"`
}

// CRDBTask is a CRDB task object (GET /v1/crdb_tasks/{task_id}).
type CRDBTask struct {
	ID       string          `json:"id"`
	CRDBGUID string          `json:"crdb_guid,omitempty"`
	Status   string          `json:"status,omitempty"` // queued, started, finished, failed
	Errors   []CRDBTaskError `json:"errors,omitempty"`
}

// CRDBTaskError is one cluster's error in a CRDB task.
type CRDBTaskError struct {
	ClusterName string `json:"cluster_name,omitempty"`
	Description string `json:"description,omitempty"`
	ErrorCode   string `json:"error_code,omitempty"`
}

// CRDB task statuses.
const (
	CRDBTaskFinished = "finished"
	CRDBTaskFailed   = "failed"
)

// CRDBHealthReport is one instance's CRDB health report object
// (GET /v1/crdbs/{crdb_guid}/health_report returns an array of them).
type CRDBHealthReport struct {
	Name            string           `json:"name,omitempty"`
	ClusterName     string           `json:"cluster_name,omitempty"`
	ConnectionError string           `json:"connection_error,omitempty"` // set when a remote cluster is not available
	Connections     []CRDBConnection `json:"connections,omitempty"`
}

// CRDBConnection is an instance's connection to another participating cluster.
type CRDBConnection struct {
	Name   string `json:"name,omitempty"`
	Status string `json:"status,omitempty"`
}
