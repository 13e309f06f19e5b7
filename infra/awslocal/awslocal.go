// Package awslocal points the AWS SDK at a local AWS emulator (moto_server) and reads audit events
// back off an EventBridge bus, for tests and the local runner.
package awslocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/replica-tls/replica-tls/shared/audit"
)

// tapAttempts is how often the audit tap tries each of its calls.
const tapAttempts = 3

// Region is the region every local client uses.
const Region = "us-east-1"

// Config returns an AWS configuration for the emulator at endpoint (e.g. moto.Server.URL): region
// us-east-1, static test credentials, one attempt per call (an SDK retry of PutEvents could
// duplicate events, and a test should see the first failure).
func Config(ctx context.Context, endpoint string) (aws.Config, error) {
	if endpoint == "" {
		return aws.Config{}, errors.New("load local AWS config: endpoint is empty")
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithBaseEndpoint(endpoint),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load local AWS config for %s: %w", endpoint, err)
	}
	return cfg, nil
}

// Captured is one audit event read back from the bus.
type Captured struct {
	Source     string          // the envelope's source
	DetailType string          // the envelope's detail-type
	Detail     json.RawMessage // the detail exactly as delivered, for schema validation
	Event      audit.Event     // the detail decoded, with DetailType set from the envelope
}

// AuditTap copies every replica-tls event on a bus into an SQS queue it owns, so a test can read
// them back (moto delivers to SQS targets; it cannot deliver to Lambda targets).
type AuditTap struct {
	eb       *eventbridge.Client
	sqs      *sqs.Client
	bus      string
	rule     string
	queueURL string
}

const targetID = "audit-tap"

// NewAuditTap creates busName if it does not exist, a queue, and a rule on the bus matching source
// replica-tls that targets the queue (with the queue policy EventBridge needs on real AWS).
// Close removes the rule and the queue; the bus stays.
func NewAuditTap(ctx context.Context, cfg aws.Config, busName string) (*AuditTap, error) {
	t := &AuditTap{
		// The tap only sets up rules and reads its queue: retrying those is safe, and it keeps a
		// connection moto drops now and then from failing a test.
		eb:  eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) { o.RetryMaxAttempts = tapAttempts }),
		sqs: sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.RetryMaxAttempts = tapAttempts }),
		bus: busName,
	}
	suffix := randomSuffix()
	t.rule = "replica-tls-audit-tap-" + suffix

	_, err := t.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)})
	var exists *ebtypes.ResourceAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return nil, fmt.Errorf("create event bus %s: %w", busName, err)
	}

	q, err := t.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("replica-tls-audit-tap-" + suffix)})
	if err != nil {
		return nil, fmt.Errorf("create audit tap queue: %w", err)
	}
	t.queueURL = aws.ToString(q.QueueUrl)
	ok := false
	defer func() {
		if !ok {
			_ = t.Close(context.WithoutCancel(ctx)) // undo the half-built tap; the setup error matters more
		}
	}()
	attrs, err := t.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return nil, fmt.Errorf("read audit tap queue ARN: %w", err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]

	rule, err := t.eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String(t.rule),
		EventBusName: aws.String(busName),
		EventPattern: aws.String(fmt.Sprintf(`{"source":[%q]}`, audit.Source)),
		State:        ebtypes.RuleStateEnabled,
	})
	if err != nil {
		return nil, fmt.Errorf("create audit tap rule on bus %s: %w", busName, err)
	}
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "AllowAuditTapRule",
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": aws.ToString(rule.RuleArn)}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode audit tap queue policy: %w", err)
	}
	if _, err := t.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   q.QueueUrl,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return nil, fmt.Errorf("set audit tap queue policy: %w", err)
	}
	out, err := t.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:         aws.String(t.rule),
		EventBusName: aws.String(busName),
		Targets:      []ebtypes.Target{{Id: aws.String(targetID), Arn: aws.String(queueARN)}},
	})
	if err != nil {
		return nil, fmt.Errorf("target audit tap rule at its queue: %w", err)
	}
	if out.FailedEntryCount > 0 {
		code := ""
		if len(out.FailedEntries) > 0 {
			code = aws.ToString(out.FailedEntries[0].ErrorCode)
		}
		return nil, fmt.Errorf("target audit tap rule at its queue: rejected (%s)", code)
	}
	ok = true
	return t, nil
}

// Drain returns every event delivered so far and deletes the messages it read. When the queue is
// empty it waits up to wait for a first event (0: not at all); once events arrive it reads until the
// queue is empty. moto delivers during PutEvents, so after a publish returns its events are there.
// It short-polls SQS, which suits moto; on real SQS an empty answer can be premature.
func (t *AuditTap) Drain(ctx context.Context, wait time.Duration) ([]Captured, error) {
	var got []Captured
	deadline := time.Now().Add(wait)
	for {
		out, err := t.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(t.queueURL),
			MaxNumberOfMessages: 10,
		})
		if err != nil {
			return got, fmt.Errorf("receive audit events from the tap on bus %s: %w", t.bus, err)
		}
		if len(out.Messages) == 0 {
			left := time.Until(deadline)
			if len(got) > 0 || left <= 0 {
				return got, nil
			}
			select {
			case <-ctx.Done():
				return got, fmt.Errorf("drain audit tap on bus %s: %w", t.bus, ctx.Err())
			case <-time.After(min(left, 50*time.Millisecond)):
			}
			continue
		}
		del := make([]sqstypes.DeleteMessageBatchRequestEntry, 0, len(out.Messages))
		for i, m := range out.Messages {
			c, err := decode(aws.ToString(m.Body))
			if err != nil {
				return got, fmt.Errorf("decode audit event (message %s) from the tap on bus %s: %w", aws.ToString(m.MessageId), t.bus, err)
			}
			got = append(got, c)
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
		}
		res, err := t.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(t.queueURL), Entries: del})
		if err != nil {
			return got, fmt.Errorf("delete read audit events from the tap on bus %s: %w", t.bus, err)
		}
		if len(res.Failed) > 0 {
			return got, fmt.Errorf("delete read audit events from the tap on bus %s: %d not deleted (%s)", t.bus, len(res.Failed), aws.ToString(res.Failed[0].Code))
		}
	}
}

// envelope is the EventBridge event as an SQS target receives it (moto leaves out "account").
type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Detail     json.RawMessage `json:"detail"`
}

func decode(body string) (Captured, error) {
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return Captured{}, fmt.Errorf("parse EventBridge envelope: %w", err)
	}
	if len(env.Detail) == 0 {
		return Captured{}, fmt.Errorf("event %s has no detail", env.ID)
	}
	var e audit.Event
	if err := json.Unmarshal(env.Detail, &e); err != nil {
		return Captured{}, fmt.Errorf("parse detail of event %s: %w", env.ID, err)
	}
	e.DetailType = env.DetailType
	return Captured{Source: env.Source, DetailType: env.DetailType, Detail: env.Detail, Event: e}, nil
}

// Close removes the rule's target, the rule and the queue. It tries all three and reports every
// failure.
func (t *AuditTap) Close(ctx context.Context) error {
	var errs []error
	if _, err := t.eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{
		Rule: aws.String(t.rule), EventBusName: aws.String(t.bus), Ids: []string{targetID},
	}); err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("remove audit tap target: %w", err))
	}
	if _, err := t.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{
		Name: aws.String(t.rule), EventBusName: aws.String(t.bus),
	}); err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("delete audit tap rule %s: %w", t.rule, err))
	}
	if t.queueURL != "" {
		if _, err := t.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(t.queueURL)}); err != nil {
			errs = append(errs, fmt.Errorf("delete audit tap queue: %w", err))
		}
	}
	return errors.Join(errs...)
}

func notFound(err error) bool {
	var nf *ebtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
