// Command secret-changed reconciles the Replica Of links of a cluster when one of its certificate
// secrets gets a new AWSCURRENT version: the native Secrets Manager "Secret Label Updated" event on the
// default bus, for secrets under the replica-tls prefix. Such a change comes from a finished rotation,
// from replica-tls recording a certificate replaced outside it (UI, rladmin), or from an operator.
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
		fmt.Fprintln(os.Stderr, "secret-changed:", err)
		os.Exit(1)
	}
	lambda.Start((&handler{app: app}).handle)
}
