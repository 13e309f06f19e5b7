package metrics

// Metric names the template's alarms and dashboard refer to. A handler records only these, so a
// renamed metric is a compile error here rather than an alarm that silently stops firing.
const (
	// Links a run looked at, and what became of them (Count).
	LinksSeen     = "LinksSeen"
	LinksSecured  = "LinksSecured"
	LinksRepaired = "LinksRepaired"
	LinksFailed   = "LinksFailed"
	LinksRejected = "LinksRejected"

	// Calls to a cluster's REST API (Count), their latency (Milliseconds, one value per call)
	// and the calls that failed after retries (Count).
	ClusterAPICalls     = "ClusterAPICalls"
	ClusterAPIRetries   = "ClusterAPIRetries"
	ClusterAPIWrites    = "ClusterAPIWrites"
	ClusterAPILatencyMs = "ClusterAPILatencyMs"
	ClusterAPIErrors    = "ClusterAPIErrors"

	// LeaseWaitMs is the time spent waiting for a cluster lease (Milliseconds).
	LeaseWaitMs = "LeaseWaitMs"
	// ColdStart is 1 on the first invocation of a container (Count).
	ColdStart = "ColdStart"
	// CertificateDaysToExpiry is the fewest days left on any certificate of a kind on a cluster
	// (None; record with Min and the cluster and kind dimensions).
	CertificateDaysToExpiry = "CertificateDaysToExpiry"

	RotationFailed    = "RotationFailed"
	RotationSucceeded = "RotationSucceeded"
	SweepCompleted    = "SweepCompleted"
	StoppedSyncs      = "StoppedSyncs"
	DriftDetected     = "DriftDetected"
)

// Dimension names. DimService is on every metric; the others are added per call.
const (
	DimService = "service"
	DimCluster = "cluster"
	DimKind    = "kind"
)
