package redact

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// Value returns v with every string inside it redacted, for values headed for JSON (audit event
// details, responses). Strings go through String; maps, slices and arrays are walked; a value under
// a map key that names a password or key (password, api_key, private_key, ...) becomes Marker; any
// other value (a struct, a pointer, a json.Marshaler) is taken as its JSON encoding and walked as
// the map[string]any, []any, string, json.Number, bool or nil it decodes to. Numbers, bools and nil
// stay as they are. A value with nothing to redact is returned as is, its type kept; v itself is
// never modified. A value that cannot be encoded as JSON is returned unchanged: it cannot be
// published either.
func Value(v any) any {
	out, _ := value(v)
	return out
}

// value returns the redacted value and whether it differs from v.
func value(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64, json.Number:
		return v, false
	case string:
		s := String(x)
		return s, s != x
	case error:
		return value(x.Error())
	case []string:
		var out []string
		for i, s := range x {
			if r := String(s); r != s {
				if out == nil {
					out = append([]string(nil), x...)
				}
				out[i] = r
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range x {
			if r, changed := value(e); changed {
				if out == nil {
					out = append([]any(nil), x...)
				}
				out[i] = r
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case map[string]any:
		return redactMap(x)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		if out, changed := redactMap(m); changed {
			return out, true
		}
		return v, false
	case json.RawMessage:
		return fromJSON(v, x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Marshaler); !ok {
			return v, false // a named number or bool (time.Duration, an enum)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v, false
	}
	return fromJSON(v, b)
}

// fromJSON walks the JSON encoding b of v; v is returned when nothing in it needs redacting.
func fromJSON(v any, b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers keep their exact digits
	var decoded any
	if err := dec.Decode(&decoded); err != nil {
		return v, false
	}
	out, changed := value(decoded)
	if !changed {
		return v, false
	}
	return out, true
}

// redactMap redacts a map's keys and values; a new map is made only when something changes.
func redactMap(m map[string]any) (any, bool) {
	var out map[string]any
	for k, e := range m {
		rk := String(k)
		r, changed := e, false
		if s, ok := e.(string); ok && s != "" && s != Marker && patterns().secretField.MatchString(k) {
			r, changed = Marker, true
		} else {
			r, changed = value(e)
		}
		if !changed && rk == k {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(m))
			for k2, e2 := range m {
				out[k2] = e2
			}
		}
		if rk != k {
			delete(out, k)
		}
		out[rk] = r
	}
	if out == nil {
		return m, false
	}
	return out, true
}
