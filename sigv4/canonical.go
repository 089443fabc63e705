package sigv4

import (
	"net/http"
	"net/url"
	"strings"
)

const (
	// Algorithm is the only signing algorithm this package speaks.
	Algorithm = "AWS4-HMAC-SHA256"
	// EmptyPayloadHash is the hex SHA-256 of an empty body.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// UnsignedPayload stands in for the payload hash when the body is not
	// signed (S3 presigned URLs, for example).
	UnsignedPayload = "UNSIGNED-PAYLOAD"

	amzDateLayout = "20060102T150405Z"
)

// The query parameters SigV4 itself puts in a presigned URL. A caller's URL
// must carry none of them.
const (
	ParamAlgorithm     = "X-Amz-Algorithm"
	ParamCredential    = "X-Amz-Credential"
	ParamDate          = "X-Amz-Date"
	ParamExpires       = "X-Amz-Expires"
	ParamSecurityToken = "X-Amz-Security-Token"
	ParamSignedHeaders = "X-Amz-SignedHeaders"
	ParamSignature     = "X-Amz-Signature"
)

// authParam reports whether name is one of the parameters above, in any case.
func authParam(name string) bool {
	if len(name) < len(ParamDate) || len(name) > len(ParamSecurityToken) || !strings.EqualFold(name[:6], "x-amz-") {
		return false
	}
	for _, p := range [...]string{ParamAlgorithm, ParamCredential, ParamDate, ParamExpires, ParamSecurityToken, ParamSignedHeaders, ParamSignature} {
		if len(p) == len(name) && strings.EqualFold(p[6:], name[6:]) {
			return true
		}
	}
	return false
}

// ignoredHeaders are never signed: proxies and clients may change them.
var ignoredHeaders = map[string]bool{
	"authorization":   true,
	"user-agent":      true,
	"x-amzn-trace-id": true,
	"expect":          true,
	"connection":      true,
}

// header is one canonical header: a lower-case name and its values in
// order, or a single value in value when values is nil (which spares an
// allocation on the presigning path).
type header struct {
	name   string
	value  string
	values []string
}

func sortHeaders(hs []header) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].name < hs[j-1].name; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// appendHeaderValues appends h's values joined by ",", each trimmed and with
// runs of white space (folded lines included) made one space.
func appendHeaderValues(b []byte, h header) []byte {
	if h.values == nil {
		return appendHeaderValue(b, h.value)
	}
	for i, v := range h.values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHeaderValue(b, v)
	}
	return b
}

func appendHeaderValue(b []byte, v string) []byte {
	if plainHeaderValue(v) {
		return append(b, v...)
	}
	v = strings.TrimSpace(v)
	space := false
	for j := 0; j < len(v); j++ {
		c := v[j]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}

// plainHeaderValue reports whether v needs no trimming or folding: no
// white space or control characters at all, the common case (a host name).
func plainHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' {
			return false
		}
	}
	return true
}

func appendSignedHeaders(b []byte, hs []header) []byte {
	for i, h := range hs {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h.name...)
	}
	return b
}

// pathOptions say how the canonical URI is made from the path on the wire.
type pathOptions struct {
	noNormalize    bool // keep "." and ".." segments and repeated slashes
	noDoubleEscape bool // S3 style: decode once, escape once
}

// appendCanonicalPath appends the canonical URI for the escaped path as it is
// sent on the wire. By default (every service but S3) the wire path is
// normalised and then escaped again.
func appendCanonicalPath(b []byte, wire string, o pathOptions) []byte {
	if wire == "" {
		wire = "/"
	}
	if !o.noNormalize && needsNormalizing(wire) {
		wire = normalizePath(wire)
	}
	if o.noDoubleEscape {
		if p, err := url.PathUnescape(wire); err == nil {
			wire = p
		}
	}
	return appendEscaped(b, wire, true)
}

func needsNormalizing(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/.") || p[0] != '/'
}

// normalizePath removes "." and ".." segments (RFC 3986 section 5.2.4) and
// empty segments, keeping a trailing slash.
func normalizePath(p string) string {
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	last := segs[len(segs)-1]
	trailing := last == "" || last == "." || last == ".."
	if len(out) == 0 {
		return "/"
	}
	s := "/" + strings.Join(out, "/")
	if trailing {
		s += "/"
	}
	return s
}

// requestHeaders collects the headers of req that header signing covers:
// host, content-length when known, and every header but the ignored ones.
func requestHeaders(req *http.Request, host string) []header {
	hs := make([]header, 0, len(req.Header)+2)
	hs = append(hs, header{name: "host", value: host})
	if req.ContentLength > 0 && req.Header.Get("Content-Length") == "" {
		hs = append(hs, header{name: "content-length", value: itoa(req.ContentLength)})
	}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		if ignoredHeaders[lk] || lk == "host" {
			continue
		}
		hs = append(hs, header{name: lk, values: v})
	}
	sortHeaders(hs)
	return hs
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// hostOf is the authority a client sends in the Host header.
func hostOf(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}
