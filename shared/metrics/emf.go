package metrics

import (
	"math"
	"strconv"
)

// entry is one metric's share of one EMF line.
type entry struct {
	name   string
	unit   Unit
	values []float64
}

// maxValuesPerLine bounds the numbers in one line. With the longest names and dimension values a
// line then stays near 120 KB, under CloudWatch Logs' event size limit (256 KB in the EMF
// specification).
const maxValuesPerLine = 1000

// lines splits a series into EMF lines: at most MaxMetricsPerLine metrics per line, at most
// MaxValuesPerMetric values per metric per line, at most maxValuesPerLine values per line. A metric
// with more values continues in a later line (round), so no line holds one metric twice.
func (s *series) lines() [][]entry {
	var lines [][]entry
	for round := 0; ; round++ {
		var cur []entry
		n := 0
		lo := round * MaxValuesPerMetric
		for _, name := range s.names {
			m := s.metrics[name]
			if lo >= len(m.values) {
				continue
			}
			e := entry{name: name, unit: m.unit, values: m.values[lo:min(lo+MaxValuesPerMetric, len(m.values))]}
			if len(cur) == MaxMetricsPerLine || n+len(e.values) > maxValuesPerLine {
				lines = append(lines, cur)
				cur, n = nil, 0
			}
			cur = append(cur, e)
			n += len(e.values)
		}
		if cur == nil {
			return lines
		}
		lines = append(lines, cur)
	}
}

// appendLine appends one EMF document and a newline:
//
//	{"_aws":{"Timestamp":T,"CloudWatchMetrics":[{"Namespace":N,"Dimensions":[[keys]],
//	"Metrics":[{"Name":M,"Unit":U},...]}]},"service":"...",...,"M":value or [values],...}
//
// Written by hand rather than through encoding/json so the members come out in this readable
// order, metadata first, and a flush costs few allocations.
func appendLine(b []byte, namespace string, ts int64, s *series, es []entry) []byte {
	b = append(b, `{"_aws":{"Timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"CloudWatchMetrics":[{"Namespace":`...)
	b = appendString(b, namespace)
	b = append(b, `,"Dimensions":[[`...)
	for i, d := range s.dims {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, d.Name)
	}
	b = append(b, `]],"Metrics":[`...)
	for i, e := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Name":`...)
		b = appendString(b, e.name)
		b = append(b, `,"Unit":`...)
		b = appendString(b, string(e.unit))
		b = append(b, '}')
	}
	b = append(b, "]}]}"...)
	for _, d := range s.dims {
		b = append(b, ',')
		b = appendString(b, d.Name)
		b = append(b, ':')
		b = appendString(b, d.Value)
	}
	for _, e := range es {
		b = append(b, ',')
		b = appendString(b, e.name)
		b = append(b, ':')
		if len(e.values) == 1 {
			b = appendNumber(b, e.values[0])
			continue
		}
		b = append(b, '[')
		for i, v := range e.values {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, v)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. Names and values were checked to be printable ASCII,
// so only the quote and the backslash need escaping; control bytes are escaped all the same.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendNumber appends a finite v as a JSON number, in plain notation where encoding/json would use it.
func appendNumber(b []byte, v float64) []byte {
	format := byte('f')
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}
