// Command minimal is the INIT floor for BenchmarkInit: a bootstrap built like the functions that
// loads the AWS SDK configuration and creates the AWS clients they create (Secrets Manager,
// EventBridge, DynamoDB), then answers every event with nothing.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// clients keeps the clients reachable so that creating them is not optimised away.
type clients struct {
	secrets *secretsmanager.Client
	events  *eventbridge.Client
	db      *dynamodb.Client
}

func (c *clients) handle(context.Context) (string, error) {
	if c.secrets == nil || c.events == nil || c.db == nil {
		return "", fmt.Errorf("clients missing")
	}
	return "ok", nil
}

func main() {
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "minimal: AWS configuration:", err)
		os.Exit(1)
	}
	c := &clients{
		secrets: secretsmanager.NewFromConfig(awsCfg),
		events:  eventbridge.NewFromConfig(awsCfg),
		db:      dynamodb.NewFromConfig(awsCfg),
	}
	lambda.Start(c.handle)
}
