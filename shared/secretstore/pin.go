package secretstore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// PinTag is the tag on a cluster's API secret that pins the FQDN the cluster is known by: the name
// its GET /v1/cluster reports, the suffix of every endpoint it serves. A cluster reporting another
// name is refused, and Replica Of links resolve only through pinned FQDNs (docs/architecture.md).
//
// Why a tag and not a field of the secret's JSON: registration fills the pin in, and writing a new
// version of the API secret would be a read-modify-write of credentials an operator may be
// changing at that moment; a tag leaves the value alone. An operator may also set the pin up front
// as the secret's optional "fqdn" field; then the two must agree.
const PinTag = "replica-tls:fqdn"

// maxFilterValues is how many values ListSecrets takes in one filter.
const maxFilterValues = 10

// PinnedFQDN is the FQDN a registered cluster is pinned to: its API secret's "fqdn" field, else its
// PinTag tag; "" when it is not pinned yet. A field and a tag that disagree are an invalid secret.
func (s *Store) PinnedFQDN(ctx context.Context, name string) (string, error) {
	api, err := s.ClusterAPI(ctx, name)
	if err != nil {
		return "", err
	}
	secret := s.APISecretName(name)
	// Read fresh every time: a decision about who a cluster is must not rest on a cached answer.
	tag, err := func() (string, error) {
		out, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
		if err != nil {
			if isNotFound(err) {
				return "", notFoundf(err, "secret %s: not found", secret)
			}
			return "", fmt.Errorf("describe secret %s: %w", secret, err)
		}
		for _, t := range out.Tags {
			if aws.ToString(t.Key) == PinTag {
				return normFQDN(aws.ToString(t.Value)), nil
			}
		}
		return "", nil
	}()
	if err != nil {
		return "", err
	}
	field := normFQDN(api.FQDN)
	switch {
	case field != "" && tag != "" && field != tag:
		return "", invalidf("secret %s: field fqdn %q and tag %s %q disagree", secret, field, PinTag, tag)
	case field != "":
		return field, nil
	}
	return tag, nil
}

// PinFQDN tags a cluster's API secret with the FQDN it is known by. Callers check first that no
// other registered cluster holds it (ClustersByFQDN) and audit the write.
func (s *Store) PinFQDN(ctx context.Context, name, fqdn string) error {
	fqdn = normFQDN(fqdn)
	if err := checkClusterName(name); err != nil {
		return err
	}
	if !validFQDN(fqdn) {
		return invalidf("pin cluster %s: %q is not a host name", name, fqdn)
	}
	secret := s.APISecretName(name)
	_, err := s.api.TagResource(ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(secret),
		Tags:     []types.Tag{{Key: aws.String(PinTag), Value: aws.String(fqdn)}},
	})
	if err != nil {
		if isNotFound(err) {
			return notFoundf(err, "secret %s: not found", secret)
		}
		return fmt.Errorf("tag secret %s with its FQDN: %w", secret, err)
	}
	return nil
}

// ClustersByFQDN finds the registered clusters pinned (by tag) to any of fqdns, in one ListSecrets
// call whatever the size of the registry: FQDN -> cluster names (more than one name is a conflict the
// caller refuses). At most 10 FQDNs a call.
func (s *Store) ClustersByFQDN(ctx context.Context, fqdns []string) (map[string][]string, error) {
	want := map[string]bool{}
	var values []string
	for _, f := range fqdns {
		f = normFQDN(f)
		if f != "" && !want[f] {
			want[f] = true
			values = append(values, f)
		}
	}
	out := map[string][]string{}
	if len(values) == 0 {
		return out, nil
	}
	if len(values) > maxFilterValues {
		return nil, invalidf("look up %d FQDNs at once: at most %d", len(values), maxFilterValues)
	}
	prefix := s.prefix + "clusters/"
	p := secretsmanager.NewListSecretsPaginator(s.api, &secretsmanager.ListSecretsInput{
		Filters: []types.Filter{
			{Key: types.FilterNameStringTypeName, Values: []string{prefix}},
			{Key: types.FilterNameStringTypeTagKey, Values: []string{PinTag}},
			// Prefix match on every tag's value: the exact match is made below.
			{Key: types.FilterNameStringTypeTagValue, Values: values},
		},
	}, func(o *secretsmanager.ListSecretsPaginatorOptions) { o.Limit = 100 })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find clusters pinned to %s: %w", strings.Join(values, ", "), err)
		}
		for _, e := range page.SecretList {
			rest, ok := strings.CutPrefix(aws.ToString(e.Name), prefix)
			if !ok {
				continue
			}
			name, ok := strings.CutSuffix(rest, "/api")
			if !ok || !validClusterName(name) {
				continue
			}
			for _, t := range e.Tags {
				if v := normFQDN(aws.ToString(t.Value)); aws.ToString(t.Key) == PinTag && want[v] && !slices.Contains(out[v], name) {
					out[v] = append(out[v], name)
				}
			}
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
}

func normFQDN(h string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".") }

// validFQDN accepts a DNS host name: dot-separated labels of letters, digits and hyphens.
func validFQDN(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
