// Command cert-rotation is the Secrets Manager rotation function for the syncer and proxy certificate
// secrets of registered clusters (<prefix>clusters/<name>/syncer and .../proxy): it runs the four
// rotation steps so that replication is never interrupted (trust first, swap second).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/rotation"
)

func main() {
	app, err := lambdaapp.FromEnvironment(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "cert-rotation:", err)
		os.Exit(1)
	}
	settings, err := rotation.SettingsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cert-rotation: configuration:", err)
		os.Exit(1)
	}
	lambda.Start((&handler{app: app, settings: settings, secrets: app.Store}).handle)
}
