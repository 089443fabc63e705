package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MaxExpires is the longest lifetime SigV4 allows a presigned URL.
const MaxExpires = 7 * 24 * time.Hour

// A Signer signs requests for one service in one region. Its zero value is
// not usable: Service and Region are required. A Signer is safe for
// concurrent use. It caches the signing keys it derives, and the escaped
// session token of each, so do not copy a Signer after first use (go vet
// reports copies): set the fields, then share a pointer.
type Signer struct {
	// Service is the signing name, e.g. "kinesisvideo" or "execute-api".
	Service string
	// Region is the signing region, e.g. "us-west-2".
	Region string
	// Clock returns the signing time. If nil, time.Now is used.
	Clock func() time.Time
	// TokenAfterSigning appends the session token after signing instead of
	// signing it (AWS IoT expects this; most services, KVS among them,
	// require the token inside the signature).
	TokenAfterSigning bool
	// DisablePathNormalization keeps "." and ".." segments and repeated
	// slashes in the canonical path (S3 needs this; others normalise).
	DisablePathNormalization bool
	// DisableDoublePathEscaping escapes the path once instead of escaping the
	// already-escaped wire path again (S3 needs this; others escape twice).
	DisableDoublePathEscaping bool
	// ContentSHA256Header makes SignRequest set and sign the
	// X-Amz-Content-Sha256 header (S3 requires it).
	ContentSHA256Header bool
	// Trace, if set, receives each canonical request and string to sign,
	// for debugging. They hold the session token and query values: pass
	// them through [Redact] before showing them to anyone.
	Trace func(canonicalRequest, stringToSign string)

	keys lazyKeys
}

// A PresignRequest describes a request to presign with query parameters.
type PresignRequest struct {
	// Method is the HTTP method; "" means GET.
	Method string
	// Scheme is the URL scheme: https, wss, http or ws.
	Scheme string
	// Host is the authority the client will send in the Host header. A
	// default port (443 for https and wss, 80 for http and ws) is dropped,
	// since clients do not send it; any other port is kept and signed.
	Host string
	// Path is the path as sent on the wire (escaped); "" means "/".
	Path string
	// Query holds the request's own parameters, decoded. None may be an
	// X-Amz-* authentication parameter.
	Query []Param
	// Header holds headers besides host that the client will send and that
	// should be signed. If nil, only host is signed.
	Header http.Header
	// PayloadHash is the hex SHA-256 of the body; "" means the empty body
	// ([EmptyPayloadHash]). Use [UnsignedPayload] for S3.
	PayloadHash string
	// Expires is how long the URL stays valid: 1 s to 7 days.
	Expires time.Duration
}

func (s *Signer) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

func (s *Signer) pathOptions() pathOptions {
	return pathOptions{noNormalize: s.DisablePathNormalization, noDoubleEscape: s.DisableDoublePathEscaping}
}

func (s *Signer) check(creds Credentials) error {
	if err := s.checkScope(); err != nil {
		return err
	}
	return creds.Validate()
}

func (s *Signer) checkScope() error {
	switch {
	case s.Service == "":
		return errors.New("sigv4: signer: service is empty")
	case s.Region == "":
		return errors.New("sigv4: signer: region is empty")
	case !validScopePart(s.Service):
		return fmt.Errorf("sigv4: signer: service %q: must be letters, digits, '-', '_' or '.'", s.Service)
	case !validScopePart(s.Region):
		return fmt.Errorf("sigv4: signer: region %q: must be letters, digits, '-', '_' or '.'", s.Region)
	}
	return nil
}

// validScopePart rejects what would corrupt the credential scope ("/" above
// all) or make an unreadable error.
func validScopePart(s string) bool {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) || s[i] == '~' {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 64
}

// stripDefaultPort drops ":443" from https/wss and ":80" from http/ws hosts.
func stripDefaultPort(scheme, host string) string {
	var port string
	switch strings.ToLower(scheme) {
	case "https", "wss":
		port = ":443"
	case "http", "ws":
		port = ":80"
	default:
		return host
	}
	if strings.HasSuffix(host, port) && !strings.HasSuffix(host, "]") {
		return host[:len(host)-len(port)]
	}
	return host
}

// Presign signs r with query authentication and returns the URL: the
// request's own parameters and SigV4's, sorted, then X-Amz-Signature.
// Presign does not modify r. To sign the same request many times, make a
// [Template] of it once.
func (s *Signer) Presign(_ context.Context, creds Credentials, r *PresignRequest) (string, error) {
	var text [1024]byte
	var segs [16]segment
	t, err := s.prepare(r, nil, text[:0], segs[:0])
	if err != nil {
		return "", err
	}
	if err := creds.Validate(); err != nil {
		return "", err
	}
	at := s.now().UTC()
	if err := checkTime(at); err != nil {
		return "", err
	}
	cfg := s.signing()
	return t.presign(&cfg, s.keys.cache(), nil, creds, at, nil), nil
}

// clone copies s, so that an error message holding it does not make the
// compiler move the caller's request to the heap.
func clone(s string) string { return string(append([]byte(nil), s...)) }

// visibleExcept reports whether s has only visible ASCII characters and
// none of the class given (classNotInHost or classNotInPath).
func visibleExcept(s string, class uint8) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || charClass[c]&class != 0 {
			return false
		}
	}
	return true
}

// checkTime refuses signing times that X-Amz-Date cannot express: before
// 1970 or after 9999 (compared as Unix seconds, which is cheaper than
// working out the year).
func checkTime(t time.Time) error {
	const end = 253402300800 // 10000-01-01T00:00:00Z
	if s := t.Unix(); s < 0 || s >= end {
		return fmt.Errorf("sigv4: signing time %s: must be between 1970 and 9999", t.Format(time.RFC3339))
	}
	return nil
}

// appendAmzDate appends t (UTC) as yyyymmddThhmmssZ.
func appendAmzDate(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	b = append(b, byte('0'+int(mo)/10), byte('0'+int(mo)%10), byte('0'+d/10), byte('0'+d%10), 'T')
	b = append(b, byte('0'+h/10), byte('0'+h%10), byte('0'+mi/10), byte('0'+mi%10), byte('0'+s/10), byte('0'+s%10), 'Z')
	return b
}

// signature hashes the canonical request, builds the string to sign and
// returns the hex HMAC of it under key.
func signature(key *keyEntry, amzDate []byte, region, service string, canonical []byte) [64]byte {
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	return h.signature(key, amzDate, region, service, h.sum(nil, canonical))
}

func appendStringToSign(b, amzDate []byte, region, service string, crHash [32]byte) []byte {
	b = append(b, Algorithm+"\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, amzDate[:8]...)
	b = append(b, '/')
	b = append(b, region...)
	b = append(b, '/')
	b = append(b, service...)
	b = append(b, "/aws4_request\n"...)
	n := len(b)
	b = append(b, make([]byte, 2*len(crHash))...)
	encodeHex(b[n:], crHash[:])
	return b
}

// trace hands the canonical request and string to sign to fn, if set.
func trace(fn func(canonicalRequest, stringToSign string), amzDate []byte, region, service string, canonical []byte) {
	if fn != nil {
		sts := appendStringToSign(nil, amzDate, region, service, sha256.Sum256(canonical))
		fn(string(canonical), string(sts))
	}
}

// PresignURL presigns u for method with query authentication. The URL's
// query is decoded once and kept; it must not already carry X-Amz-*
// authentication parameters, so an already signed URL is refused rather
// than signed twice.
func (s *Signer) PresignURL(ctx context.Context, creds Credentials, method string, u *url.URL, expires time.Duration) (string, error) {
	if u == nil {
		return "", errors.New("sigv4: url is nil")
	}
	if u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("sigv4: url %q: must be scheme://host/path?query with no user info or fragment", Redact(u.String()))
	}
	q, err := ParseQuery(u.RawQuery)
	if err != nil {
		return "", err
	}
	return s.Presign(ctx, creds, &PresignRequest{
		Method:  method,
		Scheme:  u.Scheme,
		Host:    u.Host,
		Path:    u.EscapedPath(),
		Query:   q,
		Expires: expires,
	})
}

// SignRequest signs req with the Authorization header, setting X-Amz-Date,
// X-Amz-Security-Token for temporary credentials, and X-Amz-Content-Sha256
// when the Signer asks for it. It signs the host, content length and every
// header already set except Authorization, User-Agent, Expect, Connection and
// X-Amzn-Trace-Id. payloadHash is the body's hex SHA-256; if empty, the body
// is read (through req.GetBody when set) and hashed, and req.Body is replaced
// so it can still be sent.
func (s *Signer) SignRequest(_ context.Context, creds Credentials, req *http.Request, payloadHash string) error {
	if err := s.check(creds); err != nil {
		return err
	}
	if req == nil || req.URL == nil {
		return errors.New("sigv4: request or its url is nil")
	}
	if payloadHash == "" {
		h, err := hashBody(req)
		if err != nil {
			return err
		}
		payloadHash = h
	}
	t := s.now().UTC()
	if err := checkTime(t); err != nil {
		return err
	}
	q, err := ParseQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	for _, p := range q {
		if strings.EqualFold(p.Name, ParamSignature) {
			return fmt.Errorf("sigv4: query parameter %q: the url is already presigned", p.Name)
		}
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Del("Authorization")
	amzDate := appendAmzDate(nil, t)
	req.Header.Set("X-Amz-Date", string(amzDate))
	req.Header.Del("X-Amz-Security-Token")
	if creds.SessionToken != "" && !s.TokenAfterSigning {
		req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	if s.ContentSHA256Header {
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}
	scheme := req.URL.Scheme
	if scheme == "" {
		scheme = "https"
	}
	host := stripDefaultPort(scheme, hostOf(req))
	hs := requestHeaders(req, host)
	canonical := appendCanonical(nil, req.Method, req.URL.EscapedPath(), q, hs, payloadHash, s.pathOptions())
	key := s.keys.cache().entry(creds.SecretAccessKey, [8]byte(amzDate[:8]), s.Region, s.Service)
	sig := signature(key, amzDate, s.Region, s.Service, canonical)
	trace(s.Trace, amzDate, s.Region, s.Service, canonical)
	auth := make([]byte, 0, 256)
	auth = append(auth, Algorithm+" Credential="...)
	auth = append(auth, creds.AccessKeyID...)
	auth = append(auth, '/')
	auth = append(auth, amzDate[:8]...)
	auth = append(auth, "/"+s.Region+"/"+s.Service+"/aws4_request, SignedHeaders="...)
	auth = appendSignedHeaders(auth, hs)
	auth = append(auth, ", Signature="...)
	auth = append(auth, sig[:]...)
	req.Header.Set("Authorization", string(auth))
	if creds.SessionToken != "" && s.TokenAfterSigning {
		req.Header.Set("X-Amz-Security-Token", creds.SessionToken)
	}
	return nil
}

// appendCanonical appends a whole canonical request; q is sorted here.
func appendCanonical(b []byte, method, path string, q []Param, hs []header, payloadHash string, o pathOptions) []byte {
	if method == "" {
		method = http.MethodGet
	}
	b = append(b, method...)
	b = append(b, '\n')
	b = appendCanonicalPath(b, path, o)
	b = append(b, '\n')
	sortParams(q)
	b = appendCanonicalQuery(b, q)
	b = append(b, '\n')
	return appendCanonicalTail(b, hs, payloadHash)
}

// appendCanonicalTail appends what follows the query in a canonical
// request: the headers, a blank line, the signed header names and the
// payload hash.
func appendCanonicalTail(b []byte, hs []header, payloadHash string) []byte {
	for _, h := range hs {
		b = append(b, h.name...)
		b = append(b, ':')
		b = appendHeaderValues(b, h)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = appendSignedHeaders(b, hs)
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// hashBody returns the hex SHA-256 of req's body, leaving the body readable.
func hashBody(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return EmptyPayloadHash, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return "", fmt.Errorf("sigv4: reading body: %w", err)
		}
		body = b
	} else {
		data, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return "", fmt.Errorf("sigv4: reading body: %w", err)
		}
		req.Body = io.NopCloser(strings.NewReader(string(data)))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(data))), nil }
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:]), nil
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("sigv4: reading body: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
