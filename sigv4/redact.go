package sigv4

import "strings"

// Redacted is what [Redact] puts in place of a secret.
const Redacted = "REDACTED"

// Redact returns free text — a URL, a log line, an error, a header value, a
// canonical request — with SigV4's secrets replaced by [Redacted]: the
// values of the X-Amz-Signature, X-Amz-Security-Token and X-Amz-Credential
// query parameters, the Signature of an Authorization header, the value of
// an X-Amz-Security-Token header, and the user info of a URL. Names
// stay, so the text still reads. A parameter's name is matched as a server
// reads it, percent-decoded once and in any case (X-Amz-%53ignature is the
// signature); its value ends at "&", "#", white space, a quote, a bracket,
// "," or ";", or at "%26" when the "=" itself was encoded as "%3D".
func Redact(s string) string {
	return redactTokenHeaders(redactParams(redactUserInfo(s)))
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

// redactParams replaces the values of the secret parameters in s: after
// "=" or "%3D", behind a name that decodes to one of them.
func redactParams(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		sep := 0
		switch {
		case s[i] == '=':
			sep = 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '3' && (s[i+2] == 'D' || s[i+2] == 'd'):
			sep = 3
		default:
			i++
			continue
		}
		start := i
		for start > 0 && nameByte(s[start-1]) {
			start--
		}
		v := i + sep
		if !secretParam(s[start:i]) {
			i = v
			continue
		}
		end := v
		for end < len(s) && !valueEnd(s, end, sep == 3) {
			end++
		}
		if end > v {
			b.WriteString(s[done:v])
			b.WriteString(Redacted)
			done = end
		}
		i = end
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// nameByte reports whether c may be part of a query parameter's name as
// written: unreserved, or a percent escape.
func nameByte(c byte) bool { return unreserved(c) || c == '%' }

// secretParam reports whether a name, percent-decoded once, ends with one
// of the secret parameters' names (after a decoded "&", "?" or "=", which
// is how a URL inside a parameter of another URL reads) or is an
// Authorization header's Signature.
func secretParam(raw string) bool {
	name := decodeOnce(raw)
	if i := strings.LastIndexAny(name, "&?="); i >= 0 {
		name = name[i+1:]
	}
	for _, p := range [...]string{ParamSignature, ParamSecurityToken, ParamCredential, "Signature"} {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// decodeOnce decodes %XX escapes, leaving invalid ones as they are.
func decodeOnce(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

// valueEnd reports whether a secret value ends at s[i]. Quotes, brackets,
// "," and ";" end it too, so that the text around a URL survives.
func valueEnd(s string, i int, encoded bool) bool {
	if strings.IndexByte("&# \t\r\n\"'<>()[]{},;", s[i]) >= 0 {
		return true
	}
	return encoded && s[i] == '%' && i+2 < len(s) && s[i+1] == '2' && s[i+2] == '6'
}

// redactTokenHeaders replaces the value of every X-Amz-Security-Token
// header: "name: value" or "name:value" (as in a canonical request) to the
// end of its line when the name starts the line, or up to white space, "]"
// and the like elsewhere, as when an http.Header is printed.
func redactTokenHeaders(s string) string {
	const name = ParamSecurityToken
	var b strings.Builder
	done := 0
	for i := 0; i+len(name) < len(s); i++ {
		if !strings.EqualFold(s[i:i+len(name)], name) || i > 0 && nameByte(s[i-1]) {
			continue
		}
		v := skipBlanks(s, i+len(name))
		if v >= len(s) || s[v] != ':' {
			continue
		}
		v = skipBlanks(s, v+1)
		end := v
		if lineStart(s, i) {
			for end < len(s) && s[end] != '\n' && s[end] != '\r' {
				end++
			}
		} else {
			if v < len(s) && s[v] == '[' {
				v++
			}
			end = v
			for end < len(s) && !valueEnd(s, end, false) {
				end++
			}
		}
		if end > v {
			b.WriteString(s[done:v])
			b.WriteString(Redacted)
			done = end
		}
		i = max(end, i+len(name)) - 1
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
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
