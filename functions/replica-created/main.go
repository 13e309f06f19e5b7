// Command replica-created is the Lambda that secures a new Replica Of link when a "Replica Database
// Created" event arrives: it reconciles both sides of the link and audits every step.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/replica-tls/replica-tls/shared/lambdaapp"
)

func main() {
	app, err := lambdaapp.FromEnvironment(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica-created:", err)
		os.Exit(1)
	}
	lambda.Start((&handler{app: app}).handle)
}
