// Package secretstore reads and writes replica-tls's cluster registry and certificates in AWS Secrets
// Manager, behind a small in-memory cache that lives as long as its Store (one Lambda container).
//
// # Layout
//
// Every secret is a JSON SecretString under a configurable prefix (default "replica-tls/"; a missing
// trailing "/" is added):
//
//	<prefix>clusters/<name>/api
//	    {"url": "https://...", "username": "...", "password": "...", "ca_cert": "<PEM>"}
//	    The cluster's REST API. url must be https and carry no credentials; ca_cert pins the API's
//	    (usually self-signed) certificate: verification is never skipped. AWSCURRENT is used.
//
//	<prefix>clusters/<name>/syncer
//	<prefix>clusters/<name>/proxy
//	    {"certificate": "<PEM>", "private_key": "<PEM>"}
//	    The cluster's syncer and proxy certificates. private_key is present only where replica-tls
//	    manages the rotation. Versions carry the standard stages AWSCURRENT, AWSPENDING, AWSPREVIOUS.
//
//	<prefix>databases/<cluster>/<uid>/clients
//	    {"certificates": ["<PEM>", ...]}
//	    Client certificates that database <uid> of <cluster> trusts in TLS scope "all".
//
// Cluster names match ^[a-z0-9][a-z0-9-]{0,62}$; database uids are positive integers.
//
// Reads always name a stage or a version id (never "the default version"), and a version's private
// key is returned only by CertWithKey. The first version of a secret is always AWSCURRENT.
//
// # Errors and secrets
//
// Errors name the secret and what is wrong with it ("secret replica-tls/clusters/east/api: field url:
// must be https") and never quote a secret value. Callers branch with errors.Is on ErrNotFound and
// ErrInvalid.
//
// # Cache
//
// Values (by stage and by version id), version lists and the cluster list are cached for
// Options.CacheTTL. A write through this Store drops what it cached for that secret; a write made
// elsewhere (another Lambda, the console) is seen once the TTL has passed or after Invalidate.
// Describe is never cached: the rotation protocol decides on what it returns.
package secretstore
