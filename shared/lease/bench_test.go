package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/replica-tls/replica-tls/shared/lease"
)

// BenchmarkHold measures one uncontended Hold (acquire, run, release) against moto_server: the
// DynamoDB calls it makes (the lease overhead per written resource) and its time.
func BenchmarkHold(b *testing.B) {
	api, table := newTable(b)
	s := lease.New(api, table, lease.Options{})
	res := lease.DBResource("east", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	noop := func(context.Context) error { return nil }
	for b.Loop() {
		if _, err := s.Hold(ctx, res, "bench", time.Second, noop); err != nil {
			b.Fatal(err)
		}
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Calls)/float64(st.Acquired), "dynamodb-calls/op")
	b.ReportMetric(float64(st.Tries)/float64(st.Acquired), "tries/op")
}
