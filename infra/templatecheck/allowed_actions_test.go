package templatecheck

// allowedActions is the reviewed list of every IAM action each function's role is granted, and why.
// TestPermissionsMatchTheTable fails when a function's policies and this table differ, so a new
// permission is a reviewed change here; TestGrantedActionsAreUsed fails when an entry is no longer
// backed by what it says: an SDK call in the function's own packages (fromCode), the function's
// OnFailure destination (byLambda), a Secrets Manager call the KMS key serves (bySecretsManager), or,
// for code still being written elsewhere (pending), until that code is wired in.
//
// The code check sees which packages a function builds from, not which calls it reaches: shared
// packages make it generous. The per-function rows are the reviewed part.
var allowedActions = map[string]map[string]grant{
	"ReplicaCreatedFunction": merge(readsRegistry, publishes, holdsLeases, deadLetters, writesSecrets, map[string]grant{
		"secretsmanager:CreateSecret":   fromCode("record a certificate a cluster presents (inventory) or the policy an event stated (RememberPolicies): the secret's first version"),
		"secretsmanager:PutSecretValue": fromCode("the same, as a new version of an existing secret"),
	}),
	"ClusterRegisteredFunction": merge(map[string]grant{
		"secretsmanager:TagResource": fromCode("pin the FQDN a newly registered cluster reports (secretstore.PinFQDN)"),
	}, readsRegistry, publishes, holdsLeases, deadLetters, writesSecrets, map[string]grant{
		"secretsmanager:CreateSecret":   fromCode("record the certificates a newly registered cluster presents (inventory): the secret's first version"),
		"secretsmanager:PutSecretValue": fromCode("the same, as a new version of an existing secret"),
	}),
	"CertRotationFunction": merge(readsRegistry, publishes, holdsLeases, deadLetters, writesSecrets, map[string]grant{
		"secretsmanager:PutSecretValue":           fromCode("createSecret: store the new certificate and key as AWSPENDING"),
		"secretsmanager:UpdateSecretVersionStage": fromCode("finishSecret: move AWSCURRENT to the new version, remove AWSPENDING"),
	}),
	"SecretChangedFunction": merge(readsRegistry, publishes, holdsLeases, deadLetters),
	"SweepFunction": merge(readsRegistry, publishes, deadLetters, writesSecrets, map[string]grant{
		"secretsmanager:CreateSecret":   fromCode("record a certificate replaced outside replica-tls (inventory): the secret's first version"),
		"secretsmanager:PutSecretValue": fromCode("the same, as a new version of an existing secret"),
		// The expiry notice table and the lease table share three actions.
		"dynamodb:PutItem":    fromCode("claim an expiry notice (DynamoNotices.Claim); take a lease"),
		"dynamodb:GetItem":    fromCode("read an expiry notice (DynamoNotices); read a lease"),
		"dynamodb:DeleteItem": fromCode("release an expiry notice whose event was not published; release a lease"),
		"dynamodb:UpdateItem": fromCode("renew a lease while waiting" + " (shared/lease)"),
	}),
}

var (
	readsRegistry = map[string]grant{
		"secretsmanager:GetSecretValue":       fromCode("read cluster API secrets, certificates, client lists and policies (secretstore)"),
		"secretsmanager:DescribeSecret":       fromCode("tell a missing secret from a failed listing; the rotation protocol's stages (secretstore)"),
		"secretsmanager:ListSecretVersionIds": fromCode("a certificate secret's versions and stages (secretstore)"),
		"secretsmanager:ListSecrets":          fromCode("the registered clusters (secretstore.ClusterNames)"),
		"kms:Decrypt":                         bySecretsManager("Secrets Manager decrypts secrets encrypted with SecretsKmsKeyArn", "secretsmanager:GetSecretValue"),
	}
	writesSecrets = map[string]grant{
		"kms:GenerateDataKey": bySecretsManager("Secrets Manager encrypts a new secret version with SecretsKmsKeyArn", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret"),
	}
	publishes = map[string]grant{
		"events:PutEvents": fromCode("publish audit events on the audit bus (eventbus)"),
	}
	deadLetters = map[string]grant{
		"sqs:SendMessage": byLambda("EventInvokeConfig OnFailure: Lambda sends a failed asynchronous invocation to FailedEventsQueue with the function's role"),
	}
	holdsLeases = map[string]grant{
		"dynamodb:PutItem":    fromCode("take a lease (conditional put)" + " (shared/lease)"),
		"dynamodb:UpdateItem": fromCode("renew a lease while waiting" + " (shared/lease)"),
		"dynamodb:DeleteItem": fromCode("release a lease" + " (shared/lease)"),
		"dynamodb:GetItem":    fromCode("read who holds a lease" + " (shared/lease)"),
	}
)

// grant is one reviewed permission.
type grant struct {
	by      grantedFor
	why     string
	implies []string // bySecretsManager: the Secrets Manager actions that need the key
}

type grantedFor int

const (
	codeCall      grantedFor = iota // an SDK call in the function's packages
	lambdaFeature                   // Lambda acts with the function's role
	secretsKey                      // Secrets Manager uses the KMS key for the function's calls
)

func fromCode(why string) grant { return grant{by: codeCall, why: why} }
func byLambda(why string) grant { return grant{by: lambdaFeature, why: why} }
func bySecretsManager(why string, implies ...string) grant {
	return grant{by: secretsKey, why: why, implies: implies}
}

func merge(tables ...map[string]grant) map[string]grant {
	out := map[string]grant{}
	for _, t := range tables {
		for action, g := range t {
			out[action] = g
		}
	}
	return out
}
