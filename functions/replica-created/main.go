// Command replica-created is the Lambda that secures a new Replica Of link when a "Replica Database
// Created" event arrives: it reconciles both sides of the link and audits every step.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/replica-tls/replica-tls/shared/lambdaapp"
)

func main() {
	ctx := context.Background()
	cfg, err := lambdaapp.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica-created: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica-created: AWS configuration:", err)
		os.Exit(1)
	}
	h := &handler{app: lambdaapp.New(cfg, awsCfg, os.Stderr)}
	lambda.Start(h.handle)
}
