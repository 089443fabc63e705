// A strict JSON reader (RFC 8259) for client frames, which a relay decodes
// one by one. It is written by hand, where the rest of the package uses
// encoding/json, because it decodes a frame in about a quarter of
// encoding/json's time and half its allocations
// (BenchmarkDecodeClientMessage against BenchmarkDecodeClientMessageStdlib).

package kvs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// msgKeyIs reports whether key matches name, which is ASCII, as
// encoding/json matches an object key to a field: equal under Unicode
// simple case folding, as bytes.EqualFold has it, so that "ſ" (U+017F)
// matches "s" and the Kelvin sign matches "k".
func msgKeyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		// Only a key spelling some letter with a longer rune that folds
		// to it can still match.
		return len(key) > len(name) && bytes.EqualFold(key, []byte(name))
	}
	for i := 0; i < len(key); i++ {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// msgMaxDepth bounds nesting in skipped values, so hostile input cannot
// make a relay recurse deeply for a field it ignores. This is where the
// reader knowingly differs from encoding/json, which accepts 10,000 levels:
// no client frame nests at all, so a frame nested deeper than this inside an
// unknown field is refused.
const msgMaxDepth = 64

// msgDecoder is a small strict JSON reader (RFC 8259) over one frame.
type msgDecoder struct {
	data []byte
	pos  int
	key  []byte // scratch for keys with escapes
}

func (d *msgDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("kvs: message: invalid JSON at offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *msgDecoder) ws() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// topObject reads the whole input as one object, calling fn for each key
// with the position at the value.
func (d *msgDecoder) topObject(fn func(key []byte) error) error {
	d.ws()
	if d.pos >= len(d.data) {
		return errors.New("kvs: message: empty; want a JSON object")
	}
	if d.data[d.pos] != '{' {
		return errors.New("kvs: message: not a JSON object")
	}
	if err := d.object(0, fn); err != nil {
		return err
	}
	d.ws()
	if d.pos != len(d.data) {
		return d.errorf("unexpected data after the object")
	}
	return nil
}

func (d *msgDecoder) object(depth int, fn func(key []byte) error) error {
	d.ws()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return d.errorf("want an object")
	}
	d.pos++
	d.ws()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return nil
	}
	for {
		d.ws()
		key, err := d.rawString(true)
		if err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.errorf("want ':' after an object key")
		}
		d.pos++
		d.ws()
		if err := fn(key); err != nil {
			return err
		}
		d.ws()
		if d.pos >= len(d.data) {
			return d.errorf("unterminated object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.errorf("want ',' or '}' in an object")
		}
	}
}

// stringInto reads a string into *dst. A null leaves *dst as it was, as
// encoding/json does, so it does not undo an earlier duplicate key.
func (d *msgDecoder) stringInto(dst *string, field string) error {
	if d.literal("null") {
		return nil
	}
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		if d.pos < len(d.data) {
			if err := d.skipValue(0); err != nil {
				return err
			}
		}
		return fmt.Errorf("kvs: message field %s: must be a string", field)
	}
	start := d.pos
	raw, err := d.rawString(false)
	if err != nil {
		return err
	}
	if raw != nil {
		*dst = string(raw)
	} else {
		// Has escapes: decode into a fresh string.
		*dst = string(msgUnquote(nil, d.data[start+1:d.pos-1]))
	}
	return nil
}

// rawString reads a string at d.pos. It returns the contents without the
// quotes when there were no escapes or invalid UTF-8; otherwise it returns
// nil, unless wantDecoded is set, in which case it returns the decoded text
// in d.key (valid until the next call).
func (d *msgDecoder) rawString(wantDecoded bool) ([]byte, error) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, d.errorf("want a string")
	}
	d.pos++
	start := d.pos
	simple := true
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			body := d.data[start:d.pos]
			d.pos++
			if simple {
				return body, nil
			}
			if !wantDecoded {
				return nil, nil
			}
			d.key = msgUnquote(d.key[:0], body)
			return d.key, nil
		case c == '\\':
			simple = false
			d.pos++
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated string")
			}
			switch d.data[d.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos++
			case 'u':
				if d.pos+5 > len(d.data) {
					return nil, d.errorf("short \\u escape")
				}
				for _, h := range d.data[d.pos+1 : d.pos+5] {
					if msgUnhex(h) < 0 {
						return nil, d.errorf("bad \\u escape")
					}
				}
				d.pos += 5
			default:
				return nil, d.errorf("bad escape \\%c", d.data[d.pos])
			}
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		case c < utf8.RuneSelf:
			d.pos++
		default:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && n == 1 {
				simple = false // replaced by U+FFFD, as encoding/json does
			}
			d.pos += n
		}
	}
	return nil, d.errorf("unterminated string")
}

func msgUnhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func msgHex4(b []byte) rune {
	return msgUnhex(b[0])<<12 | msgUnhex(b[1])<<8 | msgUnhex(b[2])<<4 | msgUnhex(b[3])
}

// msgUnquote appends the decoded form of a string body already checked by
// rawString: escapes resolved, lone surrogates and invalid UTF-8 replaced
// by U+FFFD (as encoding/json does).
func msgUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := msgHex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, msgHex4(s[i+2:])); r2 != utf8.RuneError {
							dst = utf8.AppendRune(dst, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // " \ /
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
	}
	return dst
}

func (d *msgDecoder) literal(lit string) bool {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return true
	}
	return false
}

func (d *msgDecoder) number() error {
	p := d.pos
	if p < len(d.data) && d.data[p] == '-' {
		p++
	}
	digits := func() int {
		n := 0
		for p < len(d.data) && '0' <= d.data[p] && d.data[p] <= '9' {
			p++
			n++
		}
		return n
	}
	if p < len(d.data) && d.data[p] == '0' {
		p++
	} else if digits() == 0 {
		return d.errorf("bad number")
	}
	if p < len(d.data) && d.data[p] == '.' {
		p++
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	if p < len(d.data) && (d.data[p] == 'e' || d.data[p] == 'E') {
		p++
		if p < len(d.data) && (d.data[p] == '+' || d.data[p] == '-') {
			p++
		}
		if digits() == 0 {
			return d.errorf("bad number")
		}
	}
	d.pos = p
	return nil
}

// skipValue checks and skips one value of any kind.
func (d *msgDecoder) skipValue(depth int) error {
	if depth > msgMaxDepth {
		return d.errorf("nested more than %d deep", msgMaxDepth)
	}
	d.ws()
	if d.pos >= len(d.data) {
		return d.errorf("want a value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, err := d.rawString(false)
		return err
	case c == '{':
		return d.object(depth+1, func([]byte) error { return d.skipValue(depth + 1) })
	case c == '[':
		d.pos++
		d.ws()
		if d.pos < len(d.data) && d.data[d.pos] == ']' {
			d.pos++
			return nil
		}
		for {
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.pos >= len(d.data) {
				return d.errorf("unterminated array")
			}
			switch d.data[d.pos] {
			case ',':
				d.pos++
			case ']':
				d.pos++
				return nil
			default:
				return d.errorf("want ',' or ']' in an array")
			}
		}
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case d.literal("true"), d.literal("false"), d.literal("null"):
		return nil
	}
	return d.errorf("unexpected character %s", strconv.QuoteRune(rune(d.data[d.pos])))
}
