package lease_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/replica-tls/replica-tls/shared/lease"
)

func TestAcquireReleaseReacquire(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{TTL: 10 * time.Second})
	res := lease.DBResource("east", 1)

	a, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatalf("acquire a free lease: %v", err)
	}
	if a.Resource != res || a.Owner != "run-a" || a.TakenOver {
		t.Errorf("lease = %s/%s taken over %v, want %s/run-a not taken over", a.Resource, a.Owner, a.TakenOver, res)
	}
	owner, exp := holderOf(t, s, res)
	if owner != "run-a" || !exp.Equal(a.Expires()) {
		t.Errorf("table says %q until %v, want run-a until %v", owner, exp, a.Expires())
	}

	_, err = s.Acquire(ctxFor(t, 30*time.Second), res, "run-b", 0)
	var busy *lease.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("acquire a held lease: %v, want a *BusyError", err)
	}
	if busy.Holder != "run-a" || busy.Tries != 1 {
		t.Errorf("busy: holder %q after %d tries, want run-a after 1", busy.Holder, busy.Tries)
	}

	if err := a.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("release: %v", err)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("after release the table still names %q", owner)
	}
	if err := a.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Errorf("second release: %v, want nil", err)
	}
	if err := a.Renew(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) {
		t.Errorf("renew after release: %v, want ErrLost", err)
	}

	b, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-b", 0)
	if err != nil {
		t.Fatalf("re-acquire: %v", err)
	}
	if b.TakenOver {
		t.Error("a released lease was reported taken over")
	}
	if err := b.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("release b: %v", err)
	}

	got := s.Stats()
	want := lease.Stats{Calls: 7, Tries: 3, Acquired: 2, Busy: 1}
	if diff := cmp.Diff(want, got, ignoreWaited); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lease.Stats{Calls: 2, Tries: 1, Acquired: 1}, b.Stats(), ignoreWaited); diff != "" {
		t.Errorf("lease stats (-want +got):\n%s", diff)
	}
}

// ignoreWaited leaves out measured times.
var ignoreWaited = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Waited" }, cmp.Ignore())

func TestTakeoverOfExpiredLease(t *testing.T) {
	api, table := newTable(t)
	start := time.Now()
	clockA, clockB := newClock(start), newClock(start.Add(5*time.Second))
	a := lease.New(api, table, lease.Options{Now: clockA.Now, TTL: 4 * time.Second})
	b := lease.New(api, table, lease.Options{Now: clockB.Now, TTL: 4 * time.Second})
	res := lease.CertResource("east", "syncer")

	la, err := a.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(ctxFor(t, 30*time.Second), res, "run-b", 0)
	if err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}
	if !lb.TakenOver {
		t.Error("TakenOver is false for a lease that replaced an expired one")
	}
	if err := la.Renew(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), `"run-b"`) {
		t.Errorf("old holder's renew: %v, want ErrLost naming run-b", err)
	}
	if err := la.Release(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) {
		t.Errorf("old holder's release: %v, want ErrLost", err)
	}
	if owner, exp := holderOf(t, b, res); owner != "run-b" || !exp.Equal(lb.Expires()) {
		t.Errorf("table says %q until %v, want run-b until %v", owner, exp, lb.Expires())
	}
	if got := b.Stats().TakenOver; got != 1 {
		t.Errorf("store counted %d takeovers, want 1", got)
	}
	if got := a.Stats().Lost; got != 1 {
		t.Errorf("store counted %d lost leases, want 1", got)
	}
	if err := lb.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Errorf("new holder's release: %v", err)
	}
}

func TestRenewDoesNotRecreateAVanishedLease(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{})
	res := lease.DBResource("east", 9)
	l, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The item disappears as if DynamoDB's TTL clean-up had removed it.
	if _, err := api.DeleteItem(ctxFor(t, 30*time.Second), &dynamodb.DeleteItemInput{
		TableName: &table, Key: map[string]types.AttributeValue{"resource": &types.AttributeValueMemberS{Value: res}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) {
		t.Errorf("renew of a vanished lease: %v, want ErrLost", err)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("renew recreated the lease for %q", owner)
	}
}

func TestReleaseNeverDeletesAnothersLease(t *testing.T) {
	api, table := newTable(t)
	start := time.Now()
	clockA, clockB := newClock(start), newClock(start)
	a := lease.New(api, table, lease.Options{Now: clockA.Now, TTL: time.Second})
	b := lease.New(api, table, lease.Options{Now: clockB.Now, TTL: time.Second})
	res := lease.DBResource("west", 7)

	la, err := a.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	// run-a's lease expires in everyone's eyes (both clocks move on); run-b takes it.
	clockA.Add(2 * time.Second)
	clockB.Add(2 * time.Second)
	lb, err := b.Acquire(ctxFor(t, 30*time.Second), res, "run-b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) {
		t.Errorf("release of a lease taken over: %v, want ErrLost", err)
	}
	if owner, exp := holderOf(t, b, res); owner != "run-b" || !exp.Equal(lb.Expires()) {
		t.Errorf("after the old holder's release the table says %q until %v, want run-b until %v", owner, exp, lb.Expires())
	}
	// Once run-b released too, run-a's lease is gone and expired: still lost, nothing to delete.
	if err := lb.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	lc, err := b.Acquire(ctxFor(t, 30*time.Second), res, "run-c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Release(ctxFor(t, 30*time.Second)); !errors.Is(err, lease.ErrLost) {
		t.Errorf("second release of a lost lease: %v, want ErrLost", err)
	}
	if owner, _ := holderOf(t, b, res); owner != "run-c" {
		t.Errorf("table says %q, want run-c", owner)
	}
	_ = lc.Release(ctxFor(t, 30*time.Second))
}

// TestMutualExclusion has 16 runs take the same lease 10 times each and checks that no two were
// ever inside at once.
func TestMutualExclusion(t *testing.T) {
	_, table := newTable(t)
	api := dynamodb.NewFromConfig(awsConfig(t, serialized(t)))
	s := lease.New(api, table, lease.Options{Poll: 10 * time.Millisecond, TTL: 10 * time.Second})
	res := lease.DBResource("east", 42)
	const runs, times = 16, 10
	var inside, most, done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runs*times)
	for r := range runs {
		wg.Go(func() {
			owner := fmt.Sprintf("run-%02d", r)
			for range times {
				_, err := s.Hold(ctxFor(t, 2*time.Minute), res, owner, time.Minute, func(context.Context) error {
					n := inside.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(5 * time.Millisecond) // long enough for other runs to try to come in
					inside.Add(-1)
					done.Add(1)
					return nil
				})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", owner, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if most.Load() != 1 {
		t.Errorf("%d runs were inside at once, want 1", most.Load())
	}
	if done.Load() != runs*times {
		t.Errorf("%d critical sections ran, want %d", done.Load(), runs*times)
	}
	st := s.Stats()
	if st.Acquired != runs*times || st.Busy != 0 || st.Lost != 0 {
		t.Errorf("stats: %+v, want %d acquired, none busy or lost", st, runs*times)
	}
	t.Logf("%d holds: %d DynamoDB calls, %d tries, %s waited in all", st.Acquired, st.Calls, st.Tries, st.Waited)
}

func TestHoldRenewsWhileFnRuns(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{TTL: 300 * time.Millisecond, Poll: 10 * time.Millisecond})
	other := lease.New(api, table, lease.Options{})
	res := lease.CertResource("west", "proxy")
	l, err := s.Hold(ctxFor(t, 30*time.Second), res, "run-a", 0, func(ctx context.Context) error {
		// Three TTLs: without renewals the lease would have expired twice over.
		for range 3 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := other.Acquire(ctx, res, "run-b", 0); !errors.Is(err, lease.ErrBusy) {
				return fmt.Errorf("another run's acquire during the hold: %v, want ErrBusy", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Renewals; got < 5 {
		t.Errorf("%d renewals in 900ms with a 300ms TTL, want at least 5", got)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("after Hold the table still names %q", owner)
	}
}

func TestHoldCancelsFnWhenLeaseLost(t *testing.T) {
	api, table := newTable(t)
	start := time.Now()
	a := lease.New(api, table, lease.Options{Now: newClock(start).Now, TTL: 300 * time.Millisecond})
	b := lease.New(api, table, lease.Options{Now: newClock(start.Add(time.Hour)).Now})
	res := lease.DBResource("east", 3)

	var fnCause error
	began := time.Now()
	_, err := a.Hold(ctxFor(t, 30*time.Second), res, "run-a", 0, func(ctx context.Context) error {
		// run-b, whose clock says run-a's lease expired long ago, takes it over.
		if _, err := b.Acquire(ctx, res, "run-b", 0); err != nil {
			return fmt.Errorf("take over: %w", err)
		}
		select {
		case <-ctx.Done():
			fnCause = context.Cause(ctx)
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("fn's context was not cancelled")
		}
	})
	if !errors.Is(err, lease.ErrLost) || !errors.Is(fnCause, lease.ErrLost) {
		t.Fatalf("Hold: %v; fn's cause %v; want both ErrLost", err, fnCause)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("fn was cancelled after %s, want about one renewal period (100ms)", took)
	}
	if owner, _ := holderOf(t, b, res); owner != "run-b" {
		t.Errorf("table says %q, want run-b (a lost Hold must not release)", owner)
	}
}

func TestHoldReleasesAfterCtxEnds(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{})
	res := lease.DBResource("east", 4)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := s.Hold(ctx, res, "run-a", 0, func(ctx context.Context) error {
		cancel()
		return nil
	})
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("after Hold under a cancelled context the table still names %q", owner)
	}
}

func TestHoldReturnsFnError(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{})
	res := lease.DBResource("east", 5)
	boom := errors.New("PUT failed")
	_, err := s.Hold(ctxFor(t, 30*time.Second), res, "run-a", 0, func(context.Context) error { return boom })
	if !errors.Is(err, boom) || errors.Is(err, lease.ErrLost) {
		t.Errorf("Hold: %v, want fn's error alone", err)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("after a failed fn the table still names %q", owner)
	}
}

func TestExpiryCappedByDeadline(t *testing.T) {
	api, table := newTable(t)
	now := time.Now().Add(-time.Hour) // the injected clock need not agree with real time
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		slack    time.Duration
		want     time.Duration // expected expiry after now
	}{
		{"no deadline: TTL", 0, 0, 30 * time.Second},
		{"deadline far off: TTL", 10 * time.Minute, time.Second, 30 * time.Second},
		{"deadline sooner: deadline plus slack", 5 * time.Second, time.Second, 6 * time.Second},
		{"default slack is 2s", 5 * time.Second, 0, 7 * time.Second},
		{"negative slack: the deadline itself", 5 * time.Second, -1, 5 * time.Second},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := lease.New(api, table, lease.Options{Now: func() time.Time { return now }, TTL: 30 * time.Second, Slack: tc.slack})
			ctx := context.Background()
			if tc.deadline > 0 {
				ctx = ctxFor(t, tc.deadline)
			}
			res := lease.DBResource("east", 100+i)
			l, err := s.Acquire(ctx, res, "run-a", 0)
			if err != nil {
				t.Fatal(err)
			}
			got := l.Expires().Sub(now)
			if got > tc.want || got < tc.want-time.Second {
				t.Errorf("lease lasts %s, want %s (less the time the call took)", got, tc.want)
			}
			if _, exp := holderOf(t, s, res); !exp.Equal(l.Expires()) {
				t.Errorf("table's expiry %v, lease's %v", exp, l.Expires())
			}
			// A renewal under a shorter deadline shortens the lease the same way.
			if err := l.Renew(ctxFor(t, 2*time.Second)); err != nil {
				t.Fatal(err)
			}
			slack := tc.slack
			switch {
			case slack == 0:
				slack = lease.DefaultSlack
			case slack < 0:
				slack = 0
			}
			if got, want := l.Expires().Sub(now), 2*time.Second+slack; got > want || got < want-time.Second {
				t.Errorf("renewed lease lasts %s, want %s", got, want)
			}
			if err := l.Release(ctxFor(t, 30*time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBusyAfterWait(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(api, table, lease.Options{Poll: 50 * time.Millisecond})
	res := lease.DBResource("east", 6)
	held, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(context.Background())

	t.Run("wait budget", func(t *testing.T) {
		const wait = 700 * time.Millisecond
		began := time.Now()
		_, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-b", wait)
		took := time.Since(began)
		var busy *lease.BusyError
		if !errors.As(err, &busy) || !errors.Is(err, lease.ErrBusy) {
			t.Fatalf("Acquire: %v, want a *BusyError", err)
		}
		if busy.Holder != "run-a" || !busy.Expires.Equal(held.Expires()) || busy.Resource != res {
			t.Errorf("busy names %s held by %q until %v, want %s held by run-a until %v", busy.Resource, busy.Holder, busy.Expires, res, held.Expires())
		}
		if took < wait || took > wait+time.Second {
			t.Errorf("gave up after %s, want about %s", took, wait)
		}
		if busy.Tries < 3 || busy.Waited < wait {
			t.Errorf("busy after %d tries and %s, want several tries over at least %s", busy.Tries, busy.Waited, wait)
		}
		for _, want := range []string{res, `"run-a"`, "busy"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not name %s", err, want)
			}
		}
	})
	t.Run("context deadline first", func(t *testing.T) {
		began := time.Now()
		_, err := s.Acquire(ctxFor(t, 400*time.Millisecond), res, "run-b", time.Minute)
		took := time.Since(began)
		if !errors.Is(err, lease.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire: %v, want ErrBusy and DeadlineExceeded", err)
		}
		if took > 1400*time.Millisecond {
			t.Errorf("gave up after %s, want about 400ms", took)
		}
	})
	t.Run("holder expires during the wait", func(t *testing.T) {
		// run-c's lease lasts 500ms (its deadline, no slack); run-d waits and takes it over
		// soon after, without being told it was released.
		short := lease.New(api, table, lease.Options{Slack: -1})
		res := lease.DBResource("east", 60)
		if _, err := short.Acquire(ctxFor(t, 500*time.Millisecond), res, "run-c", 0); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		l, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-d", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !l.TakenOver {
			t.Error("TakenOver is false")
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("took over after %s, want soon after the 500ms lease expired", took)
		}
		_ = l.Release(ctxFor(t, 30*time.Second))
	})
}

func TestFailClosed(t *testing.T) {
	api, table := newTable(t)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()
	tests := []struct {
		name   string
		api    lease.DynamoAPI
		table  string
		within time.Duration
	}{
		{"missing table", api, table + "-missing", 2 * time.Second},
		// The SDK retries a refused connection twice, with backoff, before giving up.
		{"unreachable endpoint", dynamodb.NewFromConfig(awsConfig(t, closed)), table, 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := lease.New(tc.api, tc.table, lease.Options{})
			res := lease.DBResource("east", 1)
			ran := false
			began := time.Now()
			_, err := s.Hold(ctxFor(t, time.Minute), res, "run-a", 5*time.Second, func(context.Context) error { ran = true; return nil })
			took := time.Since(began)
			if !errors.Is(err, lease.ErrUnavailable) || errors.Is(err, lease.ErrBusy) {
				t.Fatalf("Hold: %v, want ErrUnavailable", err)
			}
			if ran {
				t.Error("fn ran without a lease")
			}
			t.Logf("%s after %s: %v", tc.name, took, err)
			if took > tc.within {
				t.Errorf("failed after %s, want within %s", took, tc.within)
			}
			for _, want := range []string{tc.table, res} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not name %s", err, want)
				}
			}
			if st := s.Stats(); st.Calls != 1 || st.Acquired != 0 {
				t.Errorf("stats %+v, want 1 call and nothing acquired", st)
			}
		})
	}
}

func TestBadInputMakesNoCall(t *testing.T) {
	api, table := newTable(t)
	tests := []struct {
		name, table, resource, owner, want string
	}{
		{"no table", "", "db/east/1", "run-a", "table name is empty"},
		{"no resource", table, "", "run-a", "resource is empty"},
		{"no owner", table, "db/east/1", "", "owner is empty"},
		{"resource too long", table, strings.Repeat("x", 1025), "run-a", "more than 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := lease.New(api, tc.table, lease.Options{})
			_, err := s.Acquire(ctxFor(t, 30*time.Second), tc.resource, tc.owner, time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, lease.ErrUnavailable) {
				t.Errorf("Acquire: %v, want an error saying %q", err, tc.want)
			}
			if calls := s.Stats().Calls; calls != 0 {
				t.Errorf("%d DynamoDB calls made for bad input", calls)
			}
		})
	}
}

func TestCreateTableIsIdempotent(t *testing.T) {
	api, table := newTable(t)
	if err := lease.CreateTable(ctxFor(t, 30*time.Second), api, table); err != nil {
		t.Fatalf("create an existing table: %v", err)
	}
	out, err := api.DescribeTimeToLive(ctxFor(t, 30*time.Second), &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TimeToLiveDescription; d == nil || d.AttributeName == nil || *d.AttributeName != "ttl" || d.TimeToLiveStatus != "ENABLED" {
		t.Errorf("TTL = %+v, want enabled on ttl", d)
	}
}

// resent repeats every write, as the SDK does when an answer is lost on the way back: the second
// request meets the state the first one left.
type resent struct{ lease.DynamoAPI }

func (r resent) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := r.DynamoAPI.PutItem(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return r.DynamoAPI.PutItem(ctx, in, optFns...)
}

func (r resent) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if _, err := r.DynamoAPI.DeleteItem(ctx, in, optFns...); err != nil {
		return nil, err
	}
	return r.DynamoAPI.DeleteItem(ctx, in, optFns...)
}

func TestResentWritesKeepTheLease(t *testing.T) {
	api, table := newTable(t)
	s := lease.New(resent{api}, table, lease.Options{})
	res := lease.DBResource("east", 8)
	l, err := s.Acquire(ctxFor(t, 30*time.Second), res, "run-a", 0)
	if err != nil {
		t.Fatalf("acquire whose put was sent twice: %v", err)
	}
	if owner, exp := holderOf(t, s, res); owner != "run-a" || !exp.Equal(l.Expires()) {
		t.Errorf("table says %q until %v, want run-a until %v", owner, exp, l.Expires())
	}
	if err := l.Release(ctxFor(t, 30*time.Second)); err != nil {
		t.Errorf("release whose delete was sent twice: %v", err)
	}
	if owner, _ := holderOf(t, s, res); owner != "" {
		t.Errorf("after release the table still names %q", owner)
	}
}
