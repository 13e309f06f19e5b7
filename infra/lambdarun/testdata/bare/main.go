// Command bare is the lowest INIT BenchmarkInit reports: an aws-lambda-go bootstrap and nothing else.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "ok", nil })
}
