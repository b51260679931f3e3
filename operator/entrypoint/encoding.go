package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The two forms a result is written in, byte for byte as the core writes them (stepping.Result.to_json
// and to_message: Python's json.dumps with separators (",", ":") and its default ASCII escaping), so the
// byte counts that --message-limit bounds are the same on both sides.

// EncodeResult is the result file: every field, in the contract's order.
func EncodeResult(r Result) []byte {
	var b jsonObject
	b.str("name", r.Name)
	b.str("state", string(r.State))
	b.intp("exitCode", r.ExitCode)
	b.int64p("startedAt", r.StartedAt)
	b.int64p("finishedAt", r.FinishedAt)
	b.strp("reason", (*string)(r.Reason))
	b.strp("message", r.Message)
	b.raw("failing", strconv.FormatBool(r.Failing))
	b.int64p("outputBytes", r.OutputBytes)
	return b.close()
}

// EncodeMessage is the termination message: short keys, null fields left out, the start and the duration
// (or the end when there is no start), the output's bytes; the message, then the reason, then the output's
// bytes are left out if it would not fit in limit bytes (the kubelet keeps no more of it).
func EncodeMessage(r Result, limit int) []byte {
	drop := map[string]bool{}
	for _, next := range []string{"m", "r", "o", ""} {
		var b jsonObject
		b.str("s", string(r.State))
		if r.ExitCode != nil {
			b.intp("x", r.ExitCode)
		}
		if r.StartedAt != nil {
			b.int64p("a", r.StartedAt)
		}
		switch {
		case r.StartedAt != nil && r.FinishedAt != nil:
			b.raw("d", strconv.FormatInt(*r.FinishedAt-*r.StartedAt, 10))
		case r.FinishedAt != nil:
			b.int64p("f", r.FinishedAt)
		}
		if r.Reason != nil && !drop["r"] {
			b.str("r", string(*r.Reason))
		}
		if r.Message != nil && !drop["m"] {
			b.str("m", *r.Message)
		}
		if r.OutputBytes != nil && !drop["o"] {
			b.int64p("o", r.OutputBytes)
		}
		data := b.close()
		if len(data) <= limit || next == "" {
			return data
		}
		drop[next] = true
	}
	panic("unreachable")
}

type jsonObject struct{ strings.Builder }

func (o *jsonObject) raw(key, value string) {
	if o.Len() == 0 {
		o.WriteByte('{')
	} else {
		o.WriteByte(',')
	}
	o.WriteString(quote(key))
	o.WriteByte(':')
	o.WriteString(value)
}

func (o *jsonObject) str(key, value string) { o.raw(key, quote(value)) }

func (o *jsonObject) strp(key string, value *string) {
	if value == nil {
		o.raw(key, "null")
	} else {
		o.str(key, *value)
	}
}

func (o *jsonObject) intp(key string, value *int) {
	if value == nil {
		o.raw(key, "null")
	} else {
		o.raw(key, strconv.Itoa(*value))
	}
}

func (o *jsonObject) int64p(key string, value *int64) {
	if value == nil {
		o.raw(key, "null")
	} else {
		o.raw(key, strconv.FormatInt(*value, 10))
	}
}

func (o *jsonObject) close() []byte {
	if o.Len() == 0 {
		return []byte("{}")
	}
	o.WriteByte('}')
	return []byte(o.String())
}

// quote is a JSON string as Python's json.dumps writes it: ASCII only (\uXXXX, surrogate pairs beyond the
// BMP), the short escapes \" \\ \n \r \t \b \f, other control characters and DEL as \u00XX.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r >= 0x7f && r <= 0xffff): // Python escapes DEL (0x7f) too
				fmt.Fprintf(&b, `\u%04x`, r)
			case r > 0xffff:
				r -= 0x10000
				fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
