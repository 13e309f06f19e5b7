package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment variables ConfigFromEnv reads. The names are Powertools for AWS Lambda's, so the
// template's settings read the same as in the team's functions in other languages.
const (
	EnvNamespace = "POWERTOOLS_METRICS_NAMESPACE"
	EnvService   = "POWERTOOLS_SERVICE_NAME"
	EnvDisabled  = "POWERTOOLS_METRICS_DISABLED"
)

// Defaults for an unset namespace or service.
const (
	DefaultNamespace = "ReplicaTLS"
	DefaultService   = "replica-tls"
)

// Config says where a Recorder's metrics go.
type Config struct {
	Namespace string // CloudWatch namespace
	Service   string // value of the service dimension every metric carries
	// Now stamps each flush; nil means time.Now.
	Now func() time.Time
	// Disabled makes the Recorder record and write nothing (local runs, tests of other packages).
	Disabled bool
}

// ConfigFromEnv reads Config through getenv (os.Getenv in production), applying the defaults and
// refusing a namespace or service CloudWatch would reject.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Namespace: getenv(EnvNamespace), Service: getenv(EnvService)}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Service == "" {
		c.Service = DefaultService
	}
	if v := getenv(EnvDisabled); v != "" {
		d, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s=%q: want true or false", EnvDisabled, v)
		}
		c.Disabled = d
	}
	if err := checkNamespace(c.Namespace); err != nil {
		return Config{}, fmt.Errorf("%s=%q: %w", EnvNamespace, c.Namespace, err)
	}
	if err := checkDimValue(c.Service); err != nil {
		return Config{}, fmt.Errorf("%s=%q: %w", EnvService, c.Service, err)
	}
	return c, nil
}

// Validate reports a namespace or service CloudWatch would reject.
func (c Config) Validate() error {
	if err := checkNamespace(c.Namespace); err != nil {
		return fmt.Errorf("namespace %q: %w", c.Namespace, err)
	}
	if err := checkDimValue(c.Service); err != nil {
		return fmt.Errorf("service %q: %w", c.Service, err)
	}
	return nil
}

// CloudWatch's limits on names (PutMetricData's; EMF extraction applies the same).
const (
	maxNameLen     = 255  // namespace, metric name, dimension name
	maxDimValueLen = 1024 // dimension value
	// MaxDimensions is the most dimensions a metric can have, the service dimension included.
	MaxDimensions = 30
	// MaxMetricsPerLine is the most metric definitions one EMF directive may hold; Flush splits beyond.
	MaxMetricsPerLine = 100
	// MaxValuesPerMetric is the most values one metric member may hold in one line.
	MaxValuesPerMetric = 100
	// reservedKey is the EMF metadata member; no metric or dimension may take its name.
	reservedKey = "_aws"
)

// checkNamespace applies CloudWatch's namespace rule: 1-255 of [0-9A-Za-z.-_/#: ], not all spaces,
// and not the AWS/ prefix reserved for AWS services.
func checkNamespace(ns string) error {
	if err := checkLen(ns, maxNameLen); err != nil {
		return err
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		ok := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || strings.IndexByte("._-/#: ", c) >= 0
		if !ok {
			return fmt.Errorf("character %q not allowed (use letters, digits and . - _ / # : space)", c)
		}
	}
	if strings.HasPrefix(ns, "AWS/") {
		return errors.New("the AWS/ prefix is reserved for AWS services")
	}
	return nil
}

// checkName applies the rule for metric and dimension names: 1-255 printable ASCII characters, at
// least one of them not a space, and not the EMF metadata key.
func checkName(name string) error {
	if err := checkLen(name, maxNameLen); err != nil {
		return err
	}
	if name == reservedKey {
		return fmt.Errorf("%q is the embedded metric format's metadata member", reservedKey)
	}
	return checkPrintable(name)
}

// checkDimValue applies the rule for dimension values: 1-1024 printable ASCII characters, at least
// one of them not a space.
func checkDimValue(v string) error {
	if err := checkLen(v, maxDimValueLen); err != nil {
		return err
	}
	return checkPrintable(v)
}

// checkDimName is checkName, and a dimension name may not start with a colon.
func checkDimName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name[0] == ':' {
		return errors.New("starts with a colon")
	}
	return nil
}

func checkLen(s string, max int) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > max:
		return fmt.Errorf("%d characters, more than %d", len(s), max)
	case strings.TrimSpace(s) == "":
		return errors.New("only spaces")
	}
	return nil
}

func checkPrintable(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Errorf("byte %#x at %d is not printable ASCII", s[i], i)
		}
	}
	return nil
}
