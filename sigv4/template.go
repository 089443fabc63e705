package sigv4

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A Template is a URL to presign again and again. What stays the same from
// one signature to the next — method, scheme, host, path, expiry, signed
// headers, payload hash and the request's own query parameters — is checked,
// escaped and sorted once, by [Signer.NewTemplate]; [Template.Presign] then
// writes only the credentials, the time and the values of the template's
// open parameters. A service that signs one KVS channel for many viewers
// makes one template for the channel, with the client id open.
//
// A Template is safe for concurrent use. It keeps a copy of the settings of
// the Signer it was made by, and shares its key cache. Its zero value is not
// usable.
type Template struct {
	cfg     signing
	keys    *keyCache
	expires time.Duration
	open    []string // the open parameters' names, in the order Presign takes values

	// text holds every fixed piece; the spans below and the literal
	// segments point into it.
	text []byte
	head span // the canonical request up to the query: method and path
	tail span // the canonical request after the query: headers, payload hash
	url  span // the URL up to the query: scheme://host/path?
	cred span // what follows the date in X-Amz-Credential: %2Fregion%2Fservice%2Faws4_request
	segs []segment

	// state is the SHA-256 state after the first hashed bytes of every
	// canonical request, which are fixed: method, path and the query up
	// to its first varying part. Only NewTemplate saves one.
	state  []byte
	hashed int
}

type span struct{ start, end int }

// signing is what a Template keeps of its Signer's settings.
type signing struct {
	region, service string
	tokenAfter      bool // Signer.TokenAfterSigning
	trace           func(canonicalRequest, stringToSign string)
}

func (s *Signer) signing() signing {
	return signing{region: s.Region, service: s.Service, tokenAfter: s.TokenAfterSigning, trace: s.Trace}
}

// A segment is one piece of the canonical query: fixed text, or what
// Presign fills in.
type segment struct {
	kind uint8 // kindFixed, kindCredential, kindDate, kindToken or kindOpen
	text span  // kindFixed: the text; kindToken: "&X-Amz-Security-Token="
	open int   // kindOpen: the index of the value
}

// Segment and parameter kinds.
const (
	kindPlain      uint8 = iota // a request parameter with its value
	kindFixed                   // SigV4's own parameter whose value the template knows
	kindCredential              // X-Amz-Credential: access key and date vary
	kindDate                    // X-Amz-Date
	kindExpires                 // X-Amz-Expires
	kindToken                   // X-Amz-Security-Token: its escaped form is cached
	kindOpen                    // an open parameter
)

// qparam is a query parameter while a template is made.
type qparam struct {
	Param
	kind uint8
	open int // kindOpen: the index of the value
}

// NewTemplate checks and prepares r for presigning (r.Time is not used).
// open names parameters that are not in r.Query and that get a value each
// time the template is signed, in this order; they must not be SigV4's own
// parameters, nor repeat.
func (s *Signer) NewTemplate(r *PresignRequest, open ...string) (*Template, error) {
	t, err := s.prepare(r, open, nil, nil)
	if err != nil {
		return nil, err
	}
	t.open = append([]string(nil), open...)
	t.keys = s.keys.cache()
	// The first segment is fixed text that follows the head: every
	// parameter writes "name=" before what varies, and the token, whose
	// segment is not fixed, never comes first.
	if n := t.segs[0].text.end; n >= 64 { // less than a block would save nothing
		t.state, t.hashed = saveState(t.text[:n]), n
	}
	return &t, nil
}

// Expires returns how long a URL signed from t stays valid.
func (t *Template) Expires() time.Duration { return t.expires }

// Presign signs the template for creds at time at, with values for its open
// parameters in the order they were named, and returns the URL. The caller
// gives the time, rather than the Signer's clock, because it usually needs
// the same time to say when the URL expires.
func (t *Template) Presign(_ context.Context, creds Credentials, at time.Time, values ...string) (string, error) {
	if t.segs == nil {
		return "", errors.New("sigv4: template: not made by Signer.NewTemplate")
	}
	if err := creds.Validate(); err != nil {
		return "", err
	}
	if len(values) != len(t.open) {
		return "", fmt.Errorf("sigv4: template: %d values given for %d open parameters (%s)", len(values), len(t.open), strings.Join(t.open, ", "))
	}
	at = at.UTC()
	if err := checkTime(at); err != nil {
		return "", err
	}
	return t.presign(&t.cfg, t.keys, t.state, creds, at, values), nil
}

// prepare makes a template of r, growing text and segs, which may be
// buffers on the caller's stack: the template is returned by value so that
// they can stay there.
func (s *Signer) prepare(r *PresignRequest, open []string, text []byte, segs []segment) (t Template, err error) {
	if err := s.checkScope(); err != nil {
		return t, err
	}
	scheme, err := checkPresignRequest(r)
	if err != nil {
		return t, err
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	host := stripDefaultPort(scheme, r.Host)

	var pbuf [16]qparam
	ps, err := s.queryParams(pbuf[:0], r.Query, open)
	if err != nil {
		return t, err
	}
	var hbuf [4]header
	hs := append(hbuf[:0], header{name: "host", value: host})
	signedHeaders := "host"
	if len(r.Header) > 0 {
		if hs, err = appendHeaders(hs, r.Header); err != nil {
			return t, err
		}
		sortHeaders(hs)
		signedHeaders = string(appendSignedHeaders(nil, hs))
	}
	ps = append(ps, qparam{Param: Param{ParamSignedHeaders, signedHeaders}, kind: kindFixed})
	sortQParams(ps)

	text = append(text, method...)
	text = append(text, '\n')
	text = appendCanonicalPath(text, r.Path, s.pathOptions())
	text = append(text, '\n')
	t.head = span{0, len(text)}
	text, segs, lit := appendQuerySegments(text, segs, ps, r.Expires)
	payloadHash := r.PayloadHash
	if payloadHash == "" {
		payloadHash = EmptyPayloadHash
	}
	text = append(text, '\n')
	text = appendCanonicalTail(text, hs, payloadHash)
	t.tail = span{lit, len(text)}

	start := len(text)
	text = append(text, "%2F"...)
	text = append(text, s.Region...) // checkScope allows unreserved bytes only
	text = append(text, "%2F"...)
	text = append(text, s.Service...)
	text = append(text, "%2Faws4_request"...)
	t.cred = span{start, len(text)}

	start = len(text)
	text = appendURLPrefix(text, scheme, host, r.Path)
	t.url = span{start, len(text)}

	t.cfg = s.signing()
	t.expires = r.Expires
	t.text = text
	t.segs = segs
	return t, nil
}

// checkPresignRequest checks what of r a template keeps as it is, and
// returns the scheme in lower case.
func checkPresignRequest(r *PresignRequest) (scheme string, err error) {
	if r.Expires < time.Second || r.Expires > MaxExpires {
		return "", fmt.Errorf("sigv4: expires %v: must be from 1s to %v", time.Duration(r.Expires), MaxExpires)
	}
	if r.Expires%time.Second != 0 {
		return "", fmt.Errorf("sigv4: expires %v: must be whole seconds", r.Expires)
	}
	scheme = strings.ToLower(r.Scheme)
	switch scheme {
	case "https", "wss", "http", "ws":
	default:
		return "", fmt.Errorf("sigv4: scheme %q: must be https, wss, http or ws", clone(r.Scheme))
	}
	if r.Host == "" {
		return "", errors.New("sigv4: host is empty")
	}
	if !visibleExcept(r.Host, classNotInHost) {
		return "", fmt.Errorf("sigv4: host %q: must be a host name or address with an optional port", clone(r.Host))
	}
	if !visibleExcept(r.Path, classNotInPath) {
		return "", fmt.Errorf("sigv4: path %q: must be the escaped path alone", clone(r.Path))
	}
	return scheme, nil
}

// queryParams appends to ps the request's parameters, the open ones and
// SigV4's own but X-Amz-SignedHeaders, unsorted.
func (s *Signer) queryParams(ps []qparam, query []Param, open []string) ([]qparam, error) {
	for _, p := range query {
		if authParam(p.Name) {
			return nil, fmt.Errorf("sigv4: query parameter %q: is set by the signer and must not be given", clone(p.Name))
		}
		ps = append(ps, qparam{Param: p, kind: kindPlain})
	}
	for i, name := range open {
		if err := checkOpen(name, query, open[:i]); err != nil {
			return nil, err
		}
		ps = append(ps, qparam{Param: Param{Name: name}, kind: kindOpen, open: i})
	}
	ps = append(ps,
		qparam{Param: Param{ParamAlgorithm, Algorithm}, kind: kindFixed},
		qparam{Param: Param{ParamCredential, ""}, kind: kindCredential},
		qparam{Param: Param{ParamDate, ""}, kind: kindDate},
		qparam{Param: Param{ParamExpires, ""}, kind: kindExpires})
	if !s.TokenAfterSigning {
		ps = append(ps, qparam{Param: Param{ParamSecurityToken, ""}, kind: kindToken})
	}
	return ps, nil
}

// checkOpen checks the name of an open parameter against the request's
// query and the open parameters named before it.
func checkOpen(name string, query []Param, before []string) error {
	switch {
	case name == "":
		return errors.New("sigv4: template: an open parameter has an empty name")
	case authParam(name):
		return fmt.Errorf("sigv4: template: open parameter %q: is set by the signer", clone(name))
	}
	for _, p := range query {
		if p.Name == name {
			return fmt.Errorf("sigv4: template: open parameter %q: is also in the query", clone(name))
		}
	}
	for _, o := range before {
		if o == name {
			return fmt.Errorf("sigv4: template: open parameter %q: is named twice", clone(name))
		}
	}
	return nil
}

// appendHeaders appends the request's headers but Host, with lower-case
// names, to hs.
func appendHeaders(hs []header, h http.Header) ([]header, error) {
	for k, v := range h {
		lk := strings.ToLower(k)
		if lk == "host" {
			continue
		}
		if ignoredHeaders[lk] {
			return nil, fmt.Errorf("sigv4: header %q: cannot be signed", clone(k))
		}
		hs = append(hs, header{name: lk, values: v})
	}
	return hs, nil
}

// appendQuerySegments writes the canonical query of the sorted parameters
// ps to text, cutting it into segments where Presign fills in a value. It
// returns where the fixed text after the last segment starts.
func appendQuerySegments(text []byte, segs []segment, ps []qparam, expires time.Duration) ([]byte, []segment, int) {
	lit := len(text) // where the fixed text not yet in a segment starts
	flush := func() {
		if len(text) > lit {
			segs = append(segs, segment{kind: kindFixed, text: span{lit, len(text)}})
		}
		lit = len(text)
	}
	for i, p := range ps {
		if p.kind == kindToken {
			// Written only for temporary credentials. It never comes
			// first: X-Amz-Algorithm sorts before it.
			flush()
			text = append(text, "&"+ParamSecurityToken+"="...)
			segs = append(segs, segment{kind: kindToken, text: span{lit, len(text)}})
			lit = len(text)
			continue
		}
		if i > 0 {
			text = append(text, '&')
		}
		text = appendEscaped(text, p.Name, false)
		text = append(text, '=')
		switch p.kind {
		case kindCredential, kindDate, kindOpen:
			flush()
			segs = append(segs, segment{kind: p.kind, open: p.open})
		case kindExpires:
			text = strconv.AppendInt(text, int64(expires/time.Second), 10)
		default:
			text = appendEscaped(text, p.Value, false)
		}
	}
	flush()
	return text, segs, lit
}

// appendURLPrefix appends the URL up to its query: scheme://host/path?.
func appendURLPrefix(text []byte, scheme, host, path string) []byte {
	if path == "" {
		path = "/"
	}
	text = append(text, scheme...)
	text = append(text, "://"...)
	text = append(text, host...)
	text = append(text, path...)
	return append(text, '?')
}

func sortQParams(ps []qparam) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && paramLess(ps[j].Param, ps[j-1].Param); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

func (t *Template) bytes(s span) []byte { return t.text[s.start:s.end] }

// presign writes the canonical request, signs it and returns the URL: the
// template's prefix, the canonical query, then X-Amz-Signature. keys is
// the cache to sign with, cfg the settings and state t's saved SHA-256
// state, passed apart so that escape analysis can keep a template of
// Signer.Presign, and its buffers, on the stack.
func (t *Template) presign(cfg *signing, keys *keyCache, state []byte, creds Credentials, at time.Time, values []string) string {
	var stamp [16]byte
	amzDate := appendAmzDate(stamp[:0], at)
	withToken := creds.SessionToken != ""
	key := keys.entry(creds.SecretAccessKey, [8]byte(amzDate[:8]), cfg.region, cfg.service)

	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	b := append(h.canonical[:0], t.bytes(t.head)...)
	qstart := len(b)
	for _, sg := range t.segs {
		switch sg.kind {
		case kindFixed:
			b = append(b, t.bytes(sg.text)...)
		case kindCredential:
			b = appendEscaped(b, creds.AccessKeyID, false)
			b = append(b, "%2F"...)
			b = append(b, amzDate[:8]...)
			b = append(b, t.bytes(t.cred)...)
		case kindDate:
			b = append(b, amzDate...)
		case kindToken:
			if withToken {
				b = append(b, t.bytes(sg.text)...)
				b = key.appendEscapedToken(b, creds.SessionToken)
			}
		case kindOpen:
			b = appendEscaped(b, values[sg.open], false)
		}
	}
	qend := len(b)
	b = append(b, t.bytes(t.tail)...)

	sig := h.signature(key, amzDate, cfg.region, cfg.service, h.sum(state, b[t.hashed:]))
	trace(cfg.trace, amzDate, cfg.region, cfg.service, b)

	var after []byte
	if withToken && cfg.tokenAfter {
		after = appendEscaped([]byte("&"+ParamSecurityToken+"="), creds.SessionToken, false)
	}
	prefix, query := t.bytes(t.url), b[qstart:qend]
	var u strings.Builder
	u.Grow(len(prefix) + len(query) + len("&"+ParamSignature+"=") + len(sig) + len(after))
	u.Write(prefix)
	u.Write(query)
	u.WriteString("&" + ParamSignature + "=")
	u.Write(sig[:])
	u.Write(after)
	return u.String()
}
