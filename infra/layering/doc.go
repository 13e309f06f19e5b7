// Package layering holds the test that keeps replica-tls's dependency rules (docs/architecture.md,
// "Layers"): product code never imports infra/, nothing imports a function, only functions use the
// composition root, and the core stays free of AWS and HTTP.
package layering
