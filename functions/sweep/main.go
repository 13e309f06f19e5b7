// Command sweep is the Lambda that sweeps the whole fleet on a schedule (or on demand): it secures
// every Replica Of link, announced or not, repairs and reports drift, warns once per threshold about
// certificates approaching expiry, and audits a summary.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/replica-tls/replica-tls/shared/awsenv"
	"github.com/replica-tls/replica-tls/shared/lambdaapp"
	"github.com/replica-tls/replica-tls/shared/reconcile"
	"github.com/replica-tls/replica-tls/shared/sweep"
)

func main() {
	cfg, err := lambdaapp.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep: configuration:", err)
		os.Exit(1)
	}
	opts, err := sweep.OptionsFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := awsenv.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep: AWS configuration:", err)
		os.Exit(1)
	}
	app := lambdaapp.New(cfg, awsCfg, os.Stderr)
	var notices sweep.Notices
	if table := os.Getenv(sweep.EnvNoticeTable); table != "" {
		notices = sweep.NewDynamoNotices(dynamodb.NewFromConfig(awsCfg), table)
	}
	h := &handler{app: app, sweeper: newSweeper(app, notices, opts)}
	lambda.Start(h.handle)
}

// newSweeper wires a sweeper to the function's App.
func newSweeper(app *lambdaapp.App, notices sweep.Notices, opts sweep.Options) *sweep.Sweeper {
	return sweep.New(sweep.Config{
		Registry:           app.Registry,
		Certs:              app.Registry,
		Notices:            notices,
		RecordCertificates: app.RecordFleetCertificates,
		Reconciler:         app.Reconciler, // dry runs see planned certificates; TRUST_GRACE_DAYS prunes
		Policy:             reconcile.Policy{Scope: reconcile.Scope(app.Config.DefaultScope), ClientAuth: true},
		Options:            opts,
		Now:                func() time.Time { return app.Now() },
		Logger:             app.Logger,
	})
}
