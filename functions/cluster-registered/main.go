// Command cluster-registered is the Lambda that runs when a cluster is registered (a "Cluster
// Registered" event, or the creation of its API secret): it records the certificates the cluster
// presents into Secrets Manager and reconciles every Replica Of link touching the cluster.
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
		fmt.Fprintln(os.Stderr, "cluster-registered:", err)
		os.Exit(1)
	}
	lambda.Start((&handler{app: app}).handle)
}
