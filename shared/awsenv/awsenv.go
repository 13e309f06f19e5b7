// Package awsenv builds the AWS SDK configuration of a replica-tls function from the environment
// Lambda gives it: the region, the execution role's credentials, and an optional endpoint.
//
// config.LoadDefaultConfig does this too, but it links every credential provider (SSO, STS web
// identity, IMDS, credential_process) and reads shared config files that never exist in Lambda:
// about 1.3 MB of each bootstrap and part of every cold start (docs/architecture.md, "Lean
// bootstraps"). A function never needs those providers: Lambda puts the role's credentials in
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, and `sam local invoke` and the
// project's runner do the same. Tools that run on an operator's machine keep LoadDefaultConfig.
package awsenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Variables read from the environment.
const (
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
	EnvAccessKeyID   = "AWS_ACCESS_KEY_ID"
	EnvSecretKey     = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken  = "AWS_SESSION_TOKEN"
	// EnvEndpointURL points every client at one endpoint (moto_server locally), as the SDK's own
	// loader does with the same variable.
	EnvEndpointURL = "AWS_ENDPOINT_URL"
	// EnvMaxAttempts overrides the SDK's default of 3 attempts per call, as in the SDK's loader.
	EnvMaxAttempts = "AWS_MAX_ATTEMPTS"
)

// Load returns the AWS configuration the environment describes. Missing region or credentials are
// a clear error naming the variable, so a misconfigured function fails at INIT, not on its first
// AWS call.
func Load(getenv func(string) string) (aws.Config, error) {
	region := strings.TrimSpace(getenv(EnvRegion))
	if region == "" {
		region = strings.TrimSpace(getenv(EnvDefaultRegion))
	}
	if region == "" {
		return aws.Config{}, fmt.Errorf("%s is not set: Lambda sets it; set it when running a function elsewhere", EnvRegion)
	}
	creds := aws.Credentials{
		AccessKeyID:     strings.TrimSpace(getenv(EnvAccessKeyID)),
		SecretAccessKey: strings.TrimSpace(getenv(EnvSecretKey)),
		SessionToken:    strings.TrimSpace(getenv(EnvSessionToken)),
		Source:          "EnvironmentVariables",
	}
	switch {
	case creds.AccessKeyID == "" && creds.SecretAccessKey == "":
		return aws.Config{}, fmt.Errorf("%s and %s are not set: a function uses the credentials Lambda puts in its environment", EnvAccessKeyID, EnvSecretKey)
	case creds.AccessKeyID == "":
		return aws.Config{}, fmt.Errorf("%s is set but %s is not", EnvSecretKey, EnvAccessKeyID)
	case creds.SecretAccessKey == "":
		return aws.Config{}, fmt.Errorf("%s is set but %s is not", EnvAccessKeyID, EnvSecretKey)
	}
	cfg := aws.Config{
		Region: region,
		// Static for the life of the execution environment, exactly like the SDK's environment
		// provider; the Credentials value carries no expiry, so no cache is needed.
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	}
	if ep := strings.TrimSpace(getenv(EnvEndpointURL)); ep != "" {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return aws.Config{}, fmt.Errorf("%s %q: want an http:// or https:// URL", EnvEndpointURL, ep)
		}
		cfg.BaseEndpoint = aws.String(ep)
	}
	if v := strings.TrimSpace(getenv(EnvMaxAttempts)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aws.Config{}, fmt.Errorf("%s %q: want a whole number of at least 1", EnvMaxAttempts, v)
		}
		cfg.RetryMaxAttempts = n
	}
	return cfg, nil
}
