// Package lease coordinates writes to one resource across concurrent runs with leases held in
// DynamoDB.
//
// The Redis Enterprise REST API has no conditional write and a PUT replaces whole lists, so two
// runs writing the same database's TLS settings (or a cluster's syncer or proxy certificate) at
// once could lose each other's certificates. Every write is therefore made while holding a lease
// on its resource: an item in a DynamoDB table, put only when no unexpired lease is there.
//
// A lease ends at the latest at its run's deadline (plus Options.Slack): a run cannot act after its
// Lambda deadline, so a killed run's lease frees soon and the next run takes it over. Expiry
// times are the callers' clocks; DynamoDB's TTL only cleans items up, an hour after they expire.
package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Errors callers branch on.
var (
	// ErrBusy: another run holds the lease and did not release it in time (see *BusyError).
	ErrBusy = errors.New("lease busy")
	// ErrLost: the lease expired and another run took it over, or it could not be renewed
	// before it expired. Work done under it may have overlapped another holder's.
	ErrLost = errors.New("lease lost")
	// ErrUnavailable: the lease table could not be used (missing, unreachable, throttled past
	// the SDK's retries). Callers fail closed: no lease, no write.
	ErrUnavailable = errors.New("lease table unavailable")
)

// BusyError says who holds a resource that Acquire could not get within its wait.
type BusyError struct {
	Resource string
	Holder   string        // the holder's owner (its run id); empty if it released just before the last try
	Expires  time.Time     // when the holder's lease expires unless renewed
	Waited   time.Duration // how long Acquire waited
	Tries    int           // conditional puts made
	cause    error         // the context's cause when the context ended the wait
}

func (e *BusyError) Error() string {
	msg := fmt.Sprintf("lease %s busy: held by %q until %s; gave up after %s and %d tries",
		e.Resource, e.Holder, e.Expires.UTC().Format(time.RFC3339Nano), e.Waited.Round(time.Millisecond), e.Tries)
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Unwrap returns the context's cause when the context ended the wait, so errors.Is(err,
// context.DeadlineExceeded) holds then.
func (e *BusyError) Unwrap() error { return e.cause }

// DynamoAPI is the part of the DynamoDB client Store uses; *dynamodb.Client implements it.
type DynamoAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Options tunes a Store. Zero values take the defaults.
type Options struct {
	// Now is the clock expiry times are computed and compared with (default time.Now). Waiting
	// always uses real time.
	Now func() time.Time
	// Poll is the base wait between tries for a busy lease (default 150ms). Waits are jittered
	// and back off exponentially up to 8×Poll; a wait ends early when the holder's lease expires.
	Poll time.Duration
	// TTL is how long a lease lasts unless renewed (default 30s). Hold renews every TTL/3.
	TTL time.Duration
	// Slack is how long past its context's deadline a lease may last, for clock differences
	// between runs (default 2s; negative means none).
	Slack time.Duration
}

// Defaults for Options.
const (
	DefaultPoll  = 150 * time.Millisecond
	DefaultTTL   = 30 * time.Second
	DefaultSlack = 2 * time.Second

	maxPollFactor  = 8               // the backoff cap, in units of Poll
	cleanupAfter   = time.Hour       // the table's TTL attribute is the expiry plus this
	releaseTimeout = 5 * time.Second // Hold's release gets this long even when its context ended
	maxResourceLen = 1024            // DynamoDB allows 2048 bytes in a partition key; ours are far shorter
)

// Item attributes. resource is the table's partition key; ttl is its time-to-live attribute.
const (
	attrResource   = "resource"
	attrOwner      = "owner"
	attrToken      = "token"
	attrExpiresMs  = "expires_at_ms"
	attrAcquiredMs = "acquired_at_ms"
	attrTTL        = "ttl"
)

// Store takes leases in one DynamoDB table. It is safe for concurrent use.
type Store struct {
	api    DynamoAPI
	table  string
	now    func() time.Time
	poll   time.Duration
	ttl    time.Duration
	slack  time.Duration
	jitter func() float64 // in [0,1)
	stats  counters
}

// New returns a Store keeping leases in table (partition key "resource", a string; see
// CreateTable).
func New(api DynamoAPI, table string, opts Options) *Store {
	s := &Store{api: api, table: table, now: opts.Now, poll: opts.Poll, ttl: opts.TTL, slack: opts.Slack, jitter: mrand.Float64}
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = DefaultPoll
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	switch {
	case s.slack == 0:
		s.slack = DefaultSlack
	case s.slack < 0:
		s.slack = 0
	}
	return s
}

// Stats counts what leases cost. A Store's figures add up all its leases and failed acquisitions;
// a Lease's cover that lease only (Acquired is 1, Busy 0).
type Stats struct {
	Calls     int64         // DynamoDB requests made (each SDK retry of one is not counted again)
	Tries     int64         // conditional puts made to acquire
	Renewals  int64         // successful renewals
	Acquired  int64         // leases acquired
	TakenOver int64         // of those, taken over from an expired holder
	Busy      int64         // acquisitions that gave up with ErrBusy
	Lost      int64         // leases found lost by Renew or Release
	Waited    time.Duration // time spent waiting for busy leases
}

type counters struct {
	calls, tries, renewals, acquired, takenOver, busy, lost, waitedNs atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Calls: c.calls.Load(), Tries: c.tries.Load(), Renewals: c.renewals.Load(), Acquired: c.acquired.Load(),
		TakenOver: c.takenOver.Load(), Busy: c.busy.Load(), Lost: c.lost.Load(), Waited: time.Duration(c.waitedNs.Load()),
	}
}

// Stats returns the Store's figures so far.
func (s *Store) Stats() Stats { return s.stats.snapshot() }

// Lease is a lease held on one resource.
type Lease struct {
	Resource  string
	Owner     string
	TakenOver bool          // the previous holder's lease had expired and this one replaced it
	Waited    time.Duration // how long Acquire waited for it

	store *Store
	token string // random per acquisition: only the holder of this token may renew or release
	stats counters

	mu       sync.Mutex
	expires  time.Time
	lost     bool
	released bool
}

// Expires is when the lease ends unless renewed. It is a method because Hold renews the lease
// while its function runs.
func (l *Lease) Expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Stats returns this lease's figures so far.
func (l *Lease) Stats() Stats { return l.stats.snapshot() }

func (s *Store) validate(resource, owner string) error {
	switch {
	case s.table == "":
		return errors.New("lease table name is empty")
	case resource == "":
		return errors.New("lease resource is empty")
	case len(resource) > maxResourceLen:
		return fmt.Errorf("lease resource is %d bytes, more than %d", len(resource), maxResourceLen)
	case owner == "":
		return fmt.Errorf("lease %s: owner is empty", resource)
	}
	return nil
}

// Acquire takes the lease on resource for owner (the run's id, kept for people reading the table),
// retrying while another run holds it, for up to wait or until ctx ends. The lease lasts TTL, but
// never past ctx's deadline plus Slack.
//
// It returns a *BusyError (errors.Is(err, ErrBusy)) when the lease stayed held, and an error
// wrapping ErrUnavailable when DynamoDB failed; either way no lease is held.
func (s *Store) Acquire(ctx context.Context, resource, owner string, wait time.Duration) (*Lease, error) {
	if err := s.validate(resource, owner); err != nil {
		return nil, fmt.Errorf("acquire lease: %w", err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", resource, context.Cause(ctx))
	}
	start := time.Now()
	giveUp := start.Add(max(wait, 0))
	token := rand.Text()
	busy := &BusyError{Resource: resource}
	for try := 0; ; try++ {
		busy.Tries++
		l, h, err := s.tryAcquire(ctx, resource, owner, token)
		if err == nil {
			l.Waited = time.Since(start)
			l.stats.tries.Store(int64(busy.Tries))
			l.stats.calls.Store(int64(busy.Tries))
			l.stats.waitedNs.Store(int64(l.Waited))
			l.stats.acquired.Store(1)
			s.stats.acquired.Add(1)
			if l.TakenOver {
				l.stats.takenOver.Store(1)
				s.stats.takenOver.Add(1)
			}
			s.stats.waitedNs.Add(int64(l.Waited))
			return l, nil
		}
		if h == nil { // not held by another run: DynamoDB failed, or ctx ended
			s.stats.waitedNs.Add(int64(time.Since(start)))
			if ctx.Err() != nil {
				return nil, s.endWait(ctx, busy, start)
			}
			return nil, err
		}
		busy.Holder, busy.Expires = h.owner, h.expires

		left := time.Until(giveUp)
		if left <= 0 {
			s.stats.waitedNs.Add(int64(time.Since(start)))
			s.stats.busy.Add(1)
			busy.Waited = time.Since(start)
			return nil, busy
		}
		pause := min(backoff(s.poll, try, s.jitter()), left)
		if untilFree := h.expires.Sub(s.now()); untilFree >= 0 && untilFree < pause {
			pause = untilFree + 2*time.Millisecond // expiry is compared in whole milliseconds, strictly
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			s.stats.waitedNs.Add(int64(time.Since(start)))
			return nil, s.endWait(ctx, busy, start)
		case <-t.C:
		}
	}
}

// endWait is Acquire's error when ctx ended: busy if a holder was seen, else ctx's cause.
func (s *Store) endWait(ctx context.Context, busy *BusyError, start time.Time) error {
	if busy.Holder == "" {
		return fmt.Errorf("acquire lease %s: %w", busy.Resource, context.Cause(ctx))
	}
	s.stats.busy.Add(1)
	busy.Waited = time.Since(start)
	busy.cause = context.Cause(ctx)
	return busy
}

// holder is the lease found in the way of a conditional put.
type holder struct {
	owner   string
	expires time.Time
}

// tryAcquire makes one conditional put. It returns the lease, or the holder when another run holds
// it, or an error wrapping ErrUnavailable.
func (s *Store) tryAcquire(ctx context.Context, resource, owner, token string) (*Lease, *holder, error) {
	now := s.now()
	exp := s.expiry(ctx, now)
	s.stats.calls.Add(1)
	s.stats.tries.Add(1)
	out, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrResource:   &types.AttributeValueMemberS{Value: resource},
			attrOwner:      &types.AttributeValueMemberS{Value: owner},
			attrToken:      &types.AttributeValueMemberS{Value: token},
			attrExpiresMs:  millis(exp),
			attrAcquiredMs: millis(now),
			attrTTL:        cleanupTTL(exp),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#r) OR #e < :now"),
		ExpressionAttributeNames:            map[string]string{"#r": attrResource, "#e": attrExpiresMs},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": millis(now)},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	l := &Lease{Resource: resource, Owner: owner, store: s, token: token, expires: exp}
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		h := readHolder(failed.Item)
		if tok := stringAttr(failed.Item, attrToken); tok == token {
			// Our own put went through on an attempt whose answer was lost, and the SDK retried
			// it: the lease is ours (whether it replaced an expired one is unknown).
			l.expires = h.expires
			return l, nil, nil
		}
		return nil, &h, fmt.Errorf("lease %s held by %q", resource, h.owner)
	case err != nil:
		return nil, nil, s.unavailable("acquire", resource, err)
	}
	l.TakenOver = len(out.Attributes) > 0
	return l, nil, nil
}

// Renew extends the lease to TTL from now (never past ctx's deadline plus Slack). It returns an
// error wrapping ErrLost when another run holds the lease now, and one wrapping ErrUnavailable
// when DynamoDB failed (the lease may still be held: try again before it expires).
func (l *Lease) Renew(ctx context.Context) error {
	s := l.store
	l.mu.Lock()
	lost, released := l.lost, l.released
	l.mu.Unlock()
	if lost || released {
		return fmt.Errorf("renew lease %s: %w (it was released or lost before)", l.Resource, ErrLost)
	}
	exp := s.expiry(ctx, s.now())
	l.count()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(l.Resource),
		UpdateExpression:         aws.String("SET #e = :exp, #ttl = :ttl"),
		ConditionExpression:      aws.String("#tok = :tok"),
		ExpressionAttributeNames: map[string]string{"#e": attrExpiresMs, "#ttl": attrTTL, "#tok": attrToken},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp": millis(exp), ":ttl": cleanupTTL(exp), ":tok": &types.AttributeValueMemberS{Value: l.token},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return l.markLost("renew", failed.Item)
	case err != nil:
		return s.unavailable("renew", l.Resource, err)
	}
	l.mu.Lock()
	l.expires = exp
	l.mu.Unlock()
	l.stats.renewals.Add(1)
	s.stats.renewals.Add(1)
	return nil
}

// Release ends the lease. It deletes the item only while it still carries this lease's token, so
// it never ends another run's lease; when that run holds it now, Release returns an error
// wrapping ErrLost (worth logging: work under this lease may have overlapped that run's).
// Releasing twice is harmless.
func (l *Lease) Release(ctx context.Context) error {
	s := l.store
	l.mu.Lock()
	lost, released, expires := l.lost, l.released, l.expires
	l.mu.Unlock()
	switch {
	case lost:
		return fmt.Errorf("release lease %s: %w (found lost before)", l.Resource, ErrLost)
	case released:
		return nil
	}
	l.count()
	_, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key(l.Resource),
		ConditionExpression:                 aws.String("#tok = :tok"),
		ExpressionAttributeNames:            map[string]string{"#tok": attrToken},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":tok": &types.AttributeValueMemberS{Value: l.token}},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed) && len(failed.Item) == 0 && s.now().Before(expires):
		// The item is gone although our lease had not expired: nobody else may take an
		// unexpired lease, so it was our own delete, retried by the SDK after a lost answer.
	case errors.As(err, &failed):
		return l.markLost("release", failed.Item)
	case err != nil:
		return s.unavailable("release", l.Resource, err)
	}
	l.mu.Lock()
	l.released = true
	l.mu.Unlock()
	return nil
}

func (l *Lease) count() {
	l.stats.calls.Add(1)
	l.store.stats.calls.Add(1)
}

// markLost records that the lease is gone and says who holds it now (item is what stands in its
// place, if anything).
func (l *Lease) markLost(doing string, item map[string]types.AttributeValue) error {
	l.mu.Lock()
	l.lost = true
	l.mu.Unlock()
	l.stats.lost.Store(1)
	l.store.stats.lost.Add(1)
	if len(item) == 0 {
		return fmt.Errorf("%s lease %s: %w (it expired and is no longer in the table)", doing, l.Resource, ErrLost)
	}
	h := readHolder(item)
	return fmt.Errorf("%s lease %s: %w (now held by %q until %s)", doing, l.Resource, ErrLost, h.owner, h.expires.UTC().Format(time.RFC3339Nano))
}

// Hold runs fn while holding the lease on resource: it acquires the lease (waiting up to wait),
// renews it every TTL/3 while fn runs, and releases it when fn returns, even when ctx has ended.
// If the lease is lost (or cannot be renewed before it expires), fn's context is cancelled with a
// cause wrapping ErrLost; fn must stop writing then.
//
// The error is Acquire's when the lease could not be taken (fn did not run); otherwise fn's error
// joined with a lost lease's or a failed release's. The lease is returned for its figures.
func (s *Store) Hold(ctx context.Context, resource, owner string, wait time.Duration, fn func(ctx context.Context) error) (*Lease, error) {
	l, err := s.Acquire(ctx, resource, owner, wait)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keep(fctx, cancel)
	}()
	fnErr := fn(fctx)
	cancel(errHoldDone) // stops the renewals; a cause set before (ErrLost) stays
	<-kept

	errs := []error{fnErr}
	cause := context.Cause(fctx)
	lost := errors.Is(cause, ErrLost)
	if lost {
		errs = append(errs, cause)
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	if err := l.Release(rctx); err != nil && !(lost && errors.Is(err, ErrLost)) {
		errs = append(errs, err)
	}
	return l, errors.Join(errs...)
}

var errHoldDone = errors.New("hold done")

// keep renews the lease every TTL/3 until ctx ends, and cancels ctx with a cause wrapping ErrLost
// when the lease is lost or would expire before the next renewal.
func (l *Lease) keep(ctx context.Context, lose context.CancelCauseFunc) {
	every := max(l.store.ttl/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.Renew(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrLost):
			lose(err)
			return
		case !l.store.now().Add(every).Before(l.Expires()):
			lose(fmt.Errorf("%w: could not renew it before it expires: %w", ErrLost, err))
			return
		}
	}
}

// expiry is when a lease taken or renewed at now under ctx ends.
func (s *Store) expiry(ctx context.Context, now time.Time) time.Time {
	left, ok := time.Duration(0), false
	if dl, has := ctx.Deadline(); has {
		left, ok = time.Until(dl), true
	}
	return expiry(now, s.ttl, left, ok, s.slack)
}

// expiry returns now+ttl, but no later than the deadline plus slack, where the deadline is given
// as the time left until it (real time, so it also holds against an injected clock). The result is
// whole milliseconds, as stored.
func expiry(now time.Time, ttl, untilDeadline time.Duration, hasDeadline bool, slack time.Duration) time.Time {
	d := ttl
	if hasDeadline {
		d = min(d, untilDeadline+slack)
	}
	return time.UnixMilli(now.Add(d).UnixMilli())
}

// backoff is the pause before try+1 (try counts from 0): base doubled per try, capped at
// maxPollFactor×base, with equal jitter (half fixed, half random; r in [0,1)).
func backoff(base time.Duration, try int, r float64) time.Duration {
	d := base * maxPollFactor
	if try < 8 && base<<try < d {
		d = base << try
	}
	return d/2 + time.Duration(r*float64(d/2))
}

func (s *Store) unavailable(doing, resource string, err error) error {
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return fmt.Errorf("%s lease %s: %w: table %s not found: %w", doing, resource, ErrUnavailable, s.table, err)
	}
	return fmt.Errorf("%s lease %s: %w: table %s: %w", doing, resource, ErrUnavailable, s.table, err)
}

func key(resource string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrResource: &types.AttributeValueMemberS{Value: resource}}
}

func millis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// cleanupTTL is the table's TTL attribute for a lease expiring at exp: epoch seconds, an hour later.
func cleanupTTL(exp time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(exp.Add(cleanupAfter).Unix(), 10)}
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func readHolder(item map[string]types.AttributeValue) holder {
	h := holder{owner: stringAttr(item, attrOwner)}
	if v, ok := item[attrExpiresMs].(*types.AttributeValueMemberN); ok {
		if ms, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
			h.expires = time.UnixMilli(ms)
		}
	}
	return h
}

// Holder reads who holds the lease on resource (strongly consistent): owner is empty when no item
// is there; an item whose expires is past is an expired lease any run may take over.
func (s *Store) Holder(ctx context.Context, resource string) (owner string, expires time.Time, err error) {
	if s.table == "" || resource == "" {
		return "", time.Time{}, errors.New("read lease: table or resource is empty")
	}
	s.stats.calls.Add(1)
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(resource),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", time.Time{}, s.unavailable("read", resource, err)
	}
	h := readHolder(out.Item)
	return h.owner, h.expires, nil
}
