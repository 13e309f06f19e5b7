// Command cluster-registered is the Lambda that runs when a cluster is registered (a "Cluster
// Registered" event, or the creation of its API secret): it records the certificates the cluster
// presents into Secrets Manager and reconciles every Replica Of link touching the cluster.
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
		fmt.Fprintln(os.Stderr, "cluster-registered: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster-registered: AWS configuration:", err)
		os.Exit(1)
	}
	h := &handler{app: lambdaapp.New(cfg, awsCfg, os.Stderr)}
	lambda.Start(h.handle)
}
