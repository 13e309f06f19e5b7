package lease

import "fmt"

// The resources runs write, named once here so that every run takes the same lease for the same
// thing.

// DBResource names a database's TLS settings: "db/<cluster>/<uid>".
func DBResource(cluster string, uid int) string { return fmt.Sprintf("db/%s/%d", cluster, uid) }

// CertResource names a cluster's certificate of one kind ("syncer" or "proxy"):
// "cert/<cluster>/<kind>".
func CertResource(cluster, kind string) string { return fmt.Sprintf("cert/%s/%s", cluster, kind) }
