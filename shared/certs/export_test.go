package certs

import "testing"

// What the external tests (package certs_test, which use certstest) share with the internal ones.

// T0 is the tests' injected clock.
var T0 = t0

// AssertNoSecrets is assertNoSecrets.
func AssertNoSecrets(t *testing.T, err error, inputs ...string) {
	t.Helper()
	assertNoSecrets(t, err, inputs...)
}
