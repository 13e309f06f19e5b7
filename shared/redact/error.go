package redact

// Error returns err with its message redacted: err itself when the message holds nothing to
// redact, otherwise an error whose Error() is String(err.Error()) and whose Unwrap returns err, so
// that errors.Is and errors.As still see the whole chain. Error(nil) is nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError prints a redacted message and keeps the original error for errors.Is/As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
