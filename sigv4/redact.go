package sigv4

import (
	"bytes"
	"strings"
)

// Redacted is what [Redact] puts in place of a secret.
const Redacted = "REDACTED"

// Redact returns free text — a URL, a log line, an error, a header value, a
// canonical request, JSON, a printed url.Values or http.Header — with
// SigV4's secrets replaced by [Redacted]: the values of X-Amz-Signature,
// X-Amz-Security-Token and X-Amz-Credential, the Signature and Credential
// of an Authorization header, and the user info of a URL. Names stay, so the
// text still reads.
//
// A secret's name is matched in any case and percent-decoded as often as it
// was escaped, up to four times (X-Amz-%53ignature is the signature, and so
// is X-Amz-%2553ignature in a URL escaped inside another). It is followed by
// "=", by "=" escaped up to four times ("%3D", "%253D", ...), or, for the
// X-Amz- names, by ":", as in a header, JSON ("name": "value") or a printed
// map (name:[value]); blanks may surround "=" and ":". The value may open
// with "[" or a quote, and must after a quoted name and ":", as in JSON, so
// that an error quoting a parameter's name keeps its text. A quoted value
// ends at the quote, one opened with "[" at "]", a header's value at the end
// of its line when the name starts the line; any other ends at "&", "#",
// white space, a quote, a bracket, "," or ";", or also at an escaped "&"
// ("%26", "%2526", ...) when the "=" was escaped. A line break ends them all.
func Redact(s string) string {
	return redactParams(redactUserInfo(s))
}

// redactUserInfo replaces the user info of every URL in s.
func redactUserInfo(s string) string {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			break
		}
		i += len("://")
		end := i
		for end < len(rest) && !strings.ContainsRune("/?#\"'<>()[] \t\r\n", rune(rest[end])) {
			end++
		}
		at := strings.LastIndexByte(rest[i:end], '@')
		if at < 0 {
			b.WriteString(rest[:end])
		} else {
			b.WriteString(rest[:i])
			b.WriteString(Redacted)
			b.WriteString(rest[i+at : end])
		}
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// maxDecodes bounds how often a name is percent-decoded: a URL inside a
// parameter of a URL inside a parameter of a third is escaped three times.
const maxDecodes = 4

// maxNameBytes is the longest spelling of a secret name that Redact looks
// back over from a separator, with the "&", "?" or "=" before it: every byte
// escaped maxDecodes times ("%25252553" for "S"). Looking back no further
// keeps Redact linear in its input.
const maxNameBytes = (len(ParamSecurityToken) + 1) * (1 + 2*maxDecodes)

// maxBlanks bounds the blanks looked back over between a name and its "="
// or ":".
const maxBlanks = 8

// separator kinds, which decide the names that may precede one and where
// the value after it ends.
const (
	sepNone    = iota
	sepEqual   // "="
	sepColon   // ":"
	sepEscaped // "%3D", "%253D", ...
)

// redactParams replaces the values of the secret parameters, headers and
// fields in s.
func redactParams(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		kind, n := separatorAt(s, i)
		if kind == sepNone {
			i++
			continue
		}
		start, quotedName, ok := secretBefore(s, i, kind)
		i += n
		if !ok {
			continue
		}
		v, opened, end := valueAfter(s, i, kind, kind == sepColon && lineStart(s, start))
		// After a quoted name only a JSON string or array is a value:
		// `parameter "X-Amz-Signature": is set` is an error message, and
		// what follows is searched like any other text.
		if end > v && (opened || !quotedName) {
			if b.Cap() == 0 {
				// Sized for the text, plus a little for a REDACTED longer
				// than what it hides: a redacted URL kept for logs then
				// carries no doubled capacity.
				b.Grow(len(s) + 32)
			}
			b.WriteString(s[done:v])
			b.WriteString(Redacted)
			done = end
			i = end
		}
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// separatorAt reports whether a separator starts at s[i], and its length.
func separatorAt(s string, i int) (kind, n int) {
	switch s[i] {
	case '=':
		return sepEqual, 1
	case ':':
		return sepColon, 1
	case '%':
		j := escapedAt(s, i)
		if j+1 < len(s) && s[j] == '3' && (s[j+1] == 'D' || s[j+1] == 'd') {
			return sepEscaped, j + 2 - i
		}
	}
	return sepNone, 0
}

// escapedAt returns the index of the two hex digits of the percent escape,
// escaped up to maxDecodes times ("%", "%25", "%2525", ...), at s[i].
func escapedAt(s string, i int) int {
	j := i + 1
	for k := 1; k < maxDecodes && strings.HasPrefix(s[j:], "25"); k++ {
		j += 2
	}
	return j
}

// secretBefore reports whether a secret name ends before the separator at
// s[i], where the run of name bytes holding it starts, and whether the name
// was quoted. Blanks may come between name and "=", and between name and
// ":" a closing quote too.
func secretBefore(s string, i, kind int) (start int, quoted, ok bool) {
	end := i
	if kind != sepEscaped {
		for end > 0 && i-end < maxBlanks && (s[end-1] == ' ' || s[end-1] == '\t') {
			end--
		}
	}
	if quoted = kind == sepColon && end > 0 && s[end-1] == '"'; quoted {
		end--
	}
	start = end
	for start > 0 && end-start < maxNameBytes && nameByte(s[start-1]) {
		start--
	}
	cut := start > 0 && nameByte(s[start-1])
	return start, quoted, secretName(s[start:end], cut, kind == sepColon)
}

// nameByte reports whether c may be part of a query parameter's name as
// written: unreserved, or a percent escape.
func nameByte(c byte) bool { return unreserved(c) || c == '%' }

// secretName reports whether raw, decoded as often as it was escaped, ends
// with a secret name: after a decoded "&", "?" or "=", which is how a URL
// inside a parameter of another URL reads, or at its start unless cut (raw
// is only the end of a longer run). After a colon only the X-Amz- names
// count: "Signature:" is prose more often than a header.
func secretName(raw string, cut, colon bool) bool {
	var buf [maxNameBytes]byte
	name := buf[:copy(buf[:], raw)]
	for range maxDecodes {
		decoded := decodeInPlace(name)
		if len(decoded) == len(name) {
			break
		}
		name = decoded
		if matchSecret(name, cut, colon) {
			return true
		}
	}
	return matchSecret(name, cut, colon)
}

// matchSecret is secretName for one decoding.
func matchSecret(name []byte, cut, colon bool) bool {
	if i := bytes.LastIndexAny(name, "&?="); i >= 0 {
		name = name[i+1:]
	} else if cut {
		return false
	}
	for _, p := range [...]string{ParamSignature, ParamSecurityToken, ParamCredential} {
		if asciiEqualFold(name, p) {
			return true
		}
	}
	return !colon && (asciiEqualFold(name, "Signature") || asciiEqualFold(name, "Credential"))
}

// asciiEqualFold reports whether b equals s, which is ASCII, ignoring ASCII
// case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// decodeInPlace decodes the %XX escapes of b once, leaving invalid ones as
// they are, into b's own bytes.
func decodeInPlace(b []byte) []byte {
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) && ishex(b[i+1]) && ishex(b[i+2]) {
			b[n] = unhex(b[i+1])<<4 | unhex(b[i+2])
			i += 2
		} else {
			b[n] = b[i]
		}
		n++
	}
	return b[:n]
}

// valueAfter returns where the value after a separator of the given kind
// starts and ends, v being just past the separator, and whether a "[" or a
// quote opened it. After "=" or ":" blanks are skipped, then the "[" and the
// quote.
func valueAfter(s string, v, kind int, headerLine bool) (start int, opened bool, end int) {
	bracket, quoted := false, false
	if kind != sepEscaped {
		v = skipBlanks(s, v)
		if bracket = v < len(s) && s[v] == '['; bracket {
			v++
		}
		if quoted = v < len(s) && (s[v] == '"' || s[v] == '\''); quoted {
			v++
		}
	}
	end = v
	for end < len(s) {
		c := s[end]
		if c == '\n' || c == '\r' ||
			quoted && c == s[v-1] ||
			!quoted && bracket && c == ']' ||
			!quoted && !bracket && !headerLine && valueEnd(s, end, kind == sepEscaped) {
			break
		}
		end++
	}
	return v, bracket || quoted, end
}

// valueEnd reports whether a secret value ends at s[i]. Quotes, brackets,
// "," and ";" end it too, so that the text around a URL survives.
func valueEnd(s string, i int, escaped bool) bool {
	if strings.IndexByte("&# \t\r\n\"'<>()[]{},;", s[i]) >= 0 {
		return true
	}
	if !escaped || s[i] != '%' {
		return false
	}
	j := escapedAt(s, i)
	return j+1 < len(s) && s[j] == '2' && s[j+1] == '6'
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// lineStart reports whether only blanks precede s[i] on its line.
func lineStart(s string, i int) bool {
	for i > 0 {
		i--
		switch s[i] {
		case '\n', '\r':
			return true
		case ' ', '\t':
		default:
			return false
		}
	}
	return true
}
