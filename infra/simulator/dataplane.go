package simulator

import (
	"context"
	"sync"
)

// DataPlane is the seam for a later data plane: real redis-server processes per database that follow
// the simulated control plane, so tests can prove that replication really flows over mutually
// authenticated TLS. The simulator calls it after a change has taken effect, one call at a time and in
// order, from its own goroutine and never while holding its lock: an implementation may call back into
// the Sim (ReportLink). Errors are logged; the control plane does not roll back.
type DataPlane interface {
	// DBChanged reports a database's effective configuration (TLS mode, client authentication, trusted
	// certificates, replica sources): called for every database at Start and after every completed
	// action or MutateDB.
	DBChanged(ctx context.Context, cluster string, cfg DBConfig) error
	// CertsChanged reports a cluster's current syncer and proxy certificates and keys: called at Start
	// and after every change.
	CertsChanged(ctx context.Context, cluster string, certs ClusterCerts) error
	// DropConnections asks for every replication connection from or to the cluster to be cut (see
	// ClusterHandle.DropConnections).
	DropConnections(ctx context.Context, cluster string) error
}

// LinkOwner is a DataPlane that makes the real connections and reports every link's status itself
// (ReportLink), e.g. infra/dataplane. Start hands it the simulator before the first notification.
// With one, the connection rules no longer decide: a link shows "syncing" until the data plane reports
// on it, and again after each (re)connection until the data plane call carrying it has returned.
type LinkOwner interface {
	DataPlane
	OwnLinks(*Sim)
}

// ClusterCerts is a cluster's syncer and proxy certificates with their keys (secret).
type ClusterCerts struct {
	SyncerCert, SyncerKey string
	ProxyCert, ProxyKey   string
}

// NoDataPlane is the default: links follow the simulator's rules only.
type NoDataPlane struct{}

// DBChanged does nothing.
func (NoDataPlane) DBChanged(context.Context, string, DBConfig) error { return nil }

// CertsChanged does nothing.
func (NoDataPlane) CertsChanged(context.Context, string, ClusterCerts) error { return nil }

// DropConnections does nothing.
func (NoDataPlane) DropConnections(context.Context, string) error { return nil }

// LinkReport is the real status of a Replica Of link as a data plane observed it. Once reported, it
// replaces the simulated connection rules for that link until the link is restarted or removed.
type LinkReport struct {
	Status    string // in-sync, syncing or out-of-sync
	LastError string
	Lag       int64 // milliseconds
}

// dpQueue runs data plane calls in order on one goroutine, so callers can enqueue while holding the
// simulator's lock.
type dpQueue struct {
	mu   sync.Mutex
	jobs []func(context.Context)
	wake chan struct{}
}

func newDPQueue() *dpQueue { return &dpQueue{wake: make(chan struct{}, 1)} }

func (q *dpQueue) push(job func(context.Context)) {
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run works until ctx is done.
func (q *dpQueue) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		q.mu.Lock()
		jobs := q.jobs
		q.jobs = nil
		q.mu.Unlock()
		for _, job := range jobs {
			if ctx.Err() != nil {
				return
			}
			job(ctx)
		}
	}
}
