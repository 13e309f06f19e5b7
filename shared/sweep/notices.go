package sweep

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Notice is one expiry notice to send once: a certificate at one stage (a threshold, or expired).
type Notice struct {
	Key         string    // fingerprint/stage, e.g. "3f2a.../14d"
	Fingerprint string    // SHA-256 of the certificate
	Stage       string    // "30d", ..., "1d" or "expired"
	RunID       string    // the sweep that sent it
	KeepUntil   time.Time // the record may be forgotten after this (the store's TTL)
}

// Notices remembers, across sweeps, which expiry notices were sent, so that each is sent once
// however often the sweep runs and however many sweeps run at the same time.
type Notices interface {
	// Claim records n unless it was recorded before; claimed is false when it was.
	Claim(ctx context.Context, n Notice) (claimed bool, err error)
	// Release forgets a claim whose event could not be published, so a later sweep sends it.
	Release(ctx context.Context, key string) error
	// Claimed reports whether a notice was recorded (a dry run's question: would it be sent?).
	Claimed(ctx context.Context, key string) (bool, error)
}

// DynamoAPI is the part of the DynamoDB client DynamoNotices uses; *dynamodb.Client implements it.
type DynamoAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Attributes of the notice table. The key is the only attribute the table declares; expires_at is
// its time-to-live attribute (epoch seconds).
const (
	noticeKeyAttr = "notice"
	expiresAttr   = "expires_at"
)

// DynamoNotices keeps notices in a DynamoDB table keyed by "notice" (a string). A conditional put
// is the claim: atomic, so two sweeps running at once still send a notice once. Items expire
// through the table's TTL on expires_at, well after the certificate itself.
//
// Why DynamoDB rather than tags on the certificate's secret: certificates in trust lists often have
// no secret at all (client certificates, certificates added by hand), and tags cannot be written
// conditionally, so two sweeps could both send a notice.
type DynamoNotices struct {
	api   DynamoAPI
	table string
}

var _ Notices = (*DynamoNotices)(nil)

// NewDynamoNotices returns notices kept in table.
func NewDynamoNotices(api DynamoAPI, table string) *DynamoNotices {
	return &DynamoNotices{api: api, table: table}
}

// Claim puts the notice's item only if no item has its key.
func (d *DynamoNotices) Claim(ctx context.Context, n Notice) (bool, error) {
	_, err := d.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table),
		Item: map[string]types.AttributeValue{
			noticeKeyAttr: &types.AttributeValueMemberS{Value: n.Key},
			"fingerprint": &types.AttributeValueMemberS{Value: n.Fingerprint},
			"stage":       &types.AttributeValueMemberS{Value: n.Stage},
			"run_id":      &types.AttributeValueMemberS{Value: n.RunID},
			expiresAttr:   &types.AttributeValueMemberN{Value: strconv.FormatInt(n.KeepUntil.Unix(), 10)},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": noticeKeyAttr},
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim expiry notice %s in table %s: %w", n.Key, d.table, err)
	}
	return true, nil
}

// Release deletes the notice's item.
func (d *DynamoNotices) Release(ctx context.Context, key string) error {
	_, err := d.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(d.table),
		Key:       map[string]types.AttributeValue{noticeKeyAttr: &types.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		return fmt.Errorf("release expiry notice %s in table %s: %w", key, d.table, err)
	}
	return nil
}

// Claimed reads the notice's item, strongly consistent.
func (d *DynamoNotices) Claimed(ctx context.Context, key string) (bool, error) {
	out, err := d.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.table),
		Key:            map[string]types.AttributeValue{noticeKeyAttr: &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, fmt.Errorf("read expiry notice %s in table %s: %w", key, d.table, err)
	}
	return len(out.Item) > 0, nil
}

// TableAPI is what CreateNoticeTable needs; *dynamodb.Client implements it.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// CreateNoticeTable creates the notice table as template.yaml declares it (on-demand, TTL on
// expires_at), for local stacks and tests; an existing table is left as it is.
func CreateNoticeTable(ctx context.Context, api TableAPI, table string) error {
	_, err := api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(noticeKeyAttr), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(noticeKeyAttr), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var exists *types.ResourceInUseException
	if errors.As(err, &exists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create expiry notice table %s: %w", table, err)
	}
	if _, err := api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(expiresAttr), Enabled: aws.Bool(true)},
	}); err != nil {
		return fmt.Errorf("enable TTL on expiry notice table %s: %w", table, err)
	}
	return nil
}
