// Package schema holds the committed JSON Schema of audit event details and a validator for it.
// Only tests and test tooling validate events; it lives apart from package audit so that no Lambda
// bootstrap links the JSON Schema library.
package schema

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ID is the $id of the committed JSON Schema for audit.SchemaVersion; it changes with the version.
const ID = "https://github.com/replica-tls/replica-tls/schemas/audit-event/v1.0.json"

// schemaJSON is a string, not a []byte, so the embedded schema cannot be modified at run time.
//
//go:embed audit-event.v1.json
var schemaJSON string

// JSON returns the JSON Schema (draft 2020-12) every event detail conforms to.
func JSON() []byte { return []byte(schemaJSON) }

// Validator checks event details against the schema. Construct it once and reuse it: compiling the
// schema costs far more than validating. It is safe for concurrent use.
type Validator struct {
	schema *jsonschema.Schema
}

// NewValidator compiles the embedded schema, with format assertions (date-time) turned on.
func NewValidator() (*Validator, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse audit event schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // draft 2020-12 treats format as an annotation unless asked
	if err := c.AddResource(ID, doc); err != nil {
		return nil, fmt.Errorf("load audit event schema: %w", err)
	}
	s, err := c.Compile(ID)
	if err != nil {
		return nil, fmt.Errorf("compile audit event schema: %w", err)
	}
	return &Validator{schema: s}, nil
}

// Validate checks one event detail (the JSON of an Event). The error lists each violation by its
// JSON location; it never quotes the offending values, which could be the very secret that leaked.
func (v *Validator) Validate(detail []byte) error {
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(detail)))
	if err != nil {
		return fmt.Errorf("audit event detail is not JSON: %w", err)
	}
	err = v.schema.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate audit event detail: %w", err)
	}
	var problems []string
	collectProblems(ve, message.NewPrinter(language.English), &problems)
	return fmt.Errorf("audit event detail does not match schema %s: %s", ID, strings.Join(problems, "; "))
}

// Validate checks one event detail against the schema, compiling it for this call only.
// Use a Validator when validating many events.
func Validate(detail []byte) error {
	v, err := NewValidator()
	if err != nil {
		return err
	}
	return v.Validate(detail)
}

// collectProblems flattens the error tree to its leaves, the violations a reader can act on.
func collectProblems(e *jsonschema.ValidationError, p *message.Printer, out *[]string) {
	where := "/" + strings.Join(e.InstanceLocation, "/")
	if _, ok := e.ErrorKind.(*kind.AnyOf); ok { // one line, not one per alternative
		*out = append(*out, where+": matches none of the allowed forms")
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectProblems(c, p, out)
		}
		return
	}
	var what string
	switch k := e.ErrorKind.(type) {
	case *kind.Pattern: // the library's message quotes the value
		what = "does not match pattern " + k.Want
	case *kind.Format: // likewise
		what = "is not a valid " + k.Want
	default:
		what = k.LocalizedString(p)
	}
	*out = append(*out, where+": "+what)
}
