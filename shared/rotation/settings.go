package rotation

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/replica-tls/replica-tls/shared/certs"
)

// Environment variables of the rotation settings (template.yaml sets them from stack parameters).
const (
	EnvValidityDays = "CERT_VALIDITY_DAYS"    // lifetime of generated certificates, in days
	EnvKeyType      = "CERT_KEY_TYPE"         // rsa2048 (like Redis Enterprise) or ecdsa-p256
	EnvTestTimeout  = "ROTATION_TEST_TIMEOUT" // testSecret's bounded wait: seconds or a Go duration
	EnvTestPoll     = "ROTATION_TEST_POLL"    // how often testSecret reads the links
	EnvGraceDays    = "TRUST_GRACE_DAYS"      // days a superseded syncer certificate stays trusted; 0 = forever
)

// Defaults.
const (
	DefaultValidity    = 365 * 24 * time.Hour
	DefaultTestTimeout = 60 * time.Second
	DefaultTestPoll    = time.Second
	DefaultGrace       = 7 * 24 * time.Hour
)

// Settings tune rotation. Zero fields take the defaults, except Grace: read it with SettingsFromEnv
// (or set it) to get DefaultGrace, since 0 is a meaningful value there.
type Settings struct {
	Validity    time.Duration // generated certificates' lifetime
	KeyType     certs.KeyType // generated keys
	TestTimeout time.Duration // testSecret waits at most this long for the links to be in sync
	TestPoll    time.Duration // and reads them this often
	// Grace is reconcile.Config.PruneAfter for the functions that rotate and react to changes: how long
	// an AWSPREVIOUS syncer certificate stays trusted after its successor was created. 0 never prunes.
	Grace time.Duration
}

func (s Settings) withDefaults() Settings {
	if s.Validity <= 0 {
		s.Validity = DefaultValidity
	}
	if s.KeyType == "" {
		s.KeyType = certs.RSA2048
	}
	if s.TestTimeout <= 0 {
		s.TestTimeout = DefaultTestTimeout
	}
	if s.TestPoll <= 0 {
		s.TestPoll = DefaultTestPoll
	}
	return s
}

// SettingsFromEnv reads Settings through getenv (os.Getenv in production). Unset variables take the
// defaults; a value that does not parse is an error, so a typo cannot silently change behaviour.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{Grace: DefaultGrace}
	if v := getenv(EnvValidityDays); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3650 {
			return Settings{}, fmt.Errorf("%s=%q: want a whole number of days from 1 to 3650", EnvValidityDays, v)
		}
		s.Validity = time.Duration(n) * 24 * time.Hour
	}
	switch kt := certs.KeyType(strings.ToLower(getenv(EnvKeyType))); kt {
	case "":
	case certs.RSA2048, certs.ECDSAP256:
		s.KeyType = kt
	default:
		return Settings{}, fmt.Errorf("%s=%q: want %s or %s", EnvKeyType, kt, certs.RSA2048, certs.ECDSAP256)
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{EnvTestTimeout, &s.TestTimeout}, {EnvTestPoll, &s.TestPoll}} {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		dur, err := parseDuration(v)
		if err != nil || dur <= 0 {
			return Settings{}, fmt.Errorf("%s=%q: want a positive number of seconds or a Go duration", d.env, v)
		}
		*d.dst = dur
	}
	if v := getenv(EnvGraceDays); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 3650 {
			return Settings{}, fmt.Errorf("%s=%q: want a whole number of days from 0 (never prune) to 3650", EnvGraceDays, v)
		}
		s.Grace = time.Duration(n) * 24 * time.Hour
	}
	return s.withDefaults(), nil
}

// parseDuration accepts whole seconds ("60") or a Go duration ("1m30s").
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}
