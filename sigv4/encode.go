package sigv4

import (
	"fmt"
	"strings"
)

const upperHex = "0123456789ABCDEF"

// charClass marks, for each byte, whether RFC 3986 leaves it unescaped in a
// query component (classQuery) and in a path (classPath, which adds "/"),
// and whether a host or a path may not hold it.
var charClass = func() (t [256]uint8) {
	for c := range 256 {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			t[c] = classQuery | classPath
		}
	}
	t['/'] = classPath
	for _, c := range "/?#@%" {
		t[c] |= classNotInHost
	}
	t['?'] |= classNotInPath
	t['#'] |= classNotInPath
	return t
}()

const (
	classQuery     uint8 = 1 << iota // unescaped in a query component
	classPath                        // unescaped in a path
	classNotInHost                   // refused in a Host value
	classNotInPath                   // refused in an escaped path
)

// unreserved reports whether RFC 3986 leaves c unescaped.
func unreserved(c byte) bool { return charClass[c]&classQuery != 0 }

// appendEscaped appends s with every byte but the unreserved ones
// percent-encoded in upper-case hex; with keepSlash, "/" also stays. Runs of
// unreserved bytes are copied whole: signing escapes long session tokens.
func appendEscaped(b []byte, s string, keepSlash bool) []byte {
	class := classQuery
	if keepSlash {
		class = classPath
	}
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if charClass[c]&class != 0 {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		start = i + 1
	}
	return append(b, s[start:]...)
}

// escape returns s encoded as SigV4 encodes a query name or value (RFC 3986:
// only A-Z a-z 0-9 - _ . ~ stay as they are).
func escape(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			return string(appendEscaped(make([]byte, 0, len(s)+16), s, false))
		}
	}
	return s
}

// lessEscaped reports whether escape(a) < escape(b) without building either.
// "%" sorts below every unreserved byte and upper-case hex digits sort as the
// bytes they encode, so comparing the raw bytes decides all but one case.
func lessEscaped(a, b string) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		ux, uy := unreserved(x), unreserved(y)
		if ux != uy {
			return uy // the escaped one starts with "%" and sorts first
		}
		return x < y
	}
	return len(a) < len(b)
}

// unescape decodes one query component: %XX escapes, and "+" as a space.
// name says which parameter the component belongs to, for the error.
func unescape(s, name string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return "", fmt.Errorf("sigv4: query parameter %q: invalid percent-encoding %q", name, s[i:min(i+3, len(s))])
			}
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), nil
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// Param is one query parameter, decoded.
type Param struct {
	Name, Value string
}

// ParseQuery splits a raw query string into decoded parameters, keeping
// their order and repeats. A parameter without "=" has an empty value; a
// value may itself contain "=". Each name and value is decoded exactly once.
func ParseQuery(raw string) ([]Param, error) {
	if raw == "" {
		return nil, nil
	}
	ps := make([]Param, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		name, err := unescape(k, k)
		if err != nil {
			return nil, err
		}
		value, err := unescape(v, name)
		if err != nil {
			return nil, err
		}
		ps = append(ps, Param{name, value})
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return ps, nil
}

// sortParams sorts by escaped name, then escaped value. Insertion sort: the
// lists are short and this keeps signing free of allocations.
func sortParams(ps []Param) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && paramLess(ps[j], ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func paramLess(a, b Param) bool {
	if a.Name != b.Name {
		return lessEscaped(a.Name, b.Name)
	}
	return lessEscaped(a.Value, b.Value)
}

// appendCanonicalQuery appends sorted params as name=value pairs joined by "&".
func appendCanonicalQuery(b []byte, ps []Param) []byte {
	for i, p := range ps {
		if i > 0 {
			b = append(b, '&')
		}
		b = appendEscaped(b, p.Name, false)
		b = append(b, '=')
		b = appendEscaped(b, p.Value, false)
	}
	return b
}
