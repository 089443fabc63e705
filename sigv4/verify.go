package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kinds of verification failure, matched with errors.Is. Every error a
// [Verifier] returns is an [*Error] wrapping one of them.
var (
	ErrMissingAuth       = errors.New("sigv4: no authentication")
	ErrMalformed         = errors.New("sigv4: malformed authentication")
	ErrUnknownAccessKey  = errors.New("sigv4: unknown access key")
	ErrExpired           = errors.New("sigv4: signature expired")
	ErrNotYetValid       = errors.New("sigv4: signature not yet current")
	ErrSignatureMismatch = errors.New("sigv4: signature mismatch")
	ErrInvalidToken      = errors.New("sigv4: invalid security token")
	ErrExpiredToken      = errors.New("sigv4: expired security token")
	ErrWrongScope        = errors.New("sigv4: credential scoped to another region or service")
)

// An Error says why a request failed verification. Message is written as
// AWS writes it, so clients that look for its phrases ("Signature expired")
// find them; it never holds a secret, a token or a signature.
type Error struct {
	Kind    error // one of the Err* values above
	Message string
}

func (e *Error) Error() string { return "sigv4: " + e.Message }

// Unwrap returns e.Kind.
func (e *Error) Unwrap() error { return e.Kind }

func verr(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// A Verifier checks SigV4 signatures the way an AWS service does. It is safe
// for concurrent use. It caches the signing keys it derives, so do not copy
// a Verifier after first use (go vet reports copies).
type Verifier struct {
	// Service, if set, is the only service a credential scope may name.
	Service string
	// Region, if set, is the only region a credential scope may name.
	Region string
	// Lookup returns the credentials for an access key id, or an error that
	// wraps ErrUnknownAccessKey. When the returned credentials carry a
	// session token, the request must carry the same one; when they carry
	// an expiry in the past, the request fails with ErrExpiredToken.
	Lookup func(ctx context.Context, accessKeyID string) (Credentials, error)
	// Clock returns the current time. If nil, time.Now is used.
	Clock func() time.Time
	// MaxSkew is how far a header-signed request's time, or a presigned
	// URL's signing time, may be ahead of the clock. If zero, 5 minutes.
	// A header-signed request also expires MaxSkew after its signing time.
	MaxSkew time.Duration
	// MaxExpires caps X-Amz-Expires. If zero, 7 days.
	MaxExpires time.Duration
	// MaxBodyBytes caps the body a Verify method reads to hash it. If zero,
	// 10 MiB.
	MaxBodyBytes int64

	keys lazyKeys
}

// Result describes a request that passed verification.
type Result struct {
	Credentials Credentials // as returned by Lookup
	AccessKeyID string
	Region      string
	Service     string
	SignedAt    time.Time
	ExpiresAt   time.Time
	// Query holds a presigned URL's own parameters (all but the X-Amz-*
	// authentication ones), decoded, in their order in the URL.
	Query []Param
}

// Get returns the first value of the named query parameter.
func (r *Result) Get(name string) (string, bool) {
	for _, p := range r.Query {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

func (v *Verifier) now() time.Time {
	if v.Clock != nil {
		return v.Clock()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return 5 * time.Minute
}

// scope is a parsed credential: AKID/date/region/service/aws4_request.
type scope struct {
	accessKeyID, date, region, service string
}

// maxScopeName caps the region and the service of a credential scope. The
// verifier caches a derived key by them before it knows the signature is
// good, so a client must not be able to make each entry arbitrarily large;
// AWS's own region and service names are far shorter.
const maxScopeName = 64

func parseCredential(s string) (scope, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return scope{}, verr(ErrMalformed, "Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request.")
	}
	for i, p := range parts[:4] {
		field := [...]string{"access key id", "date", "region", "service"}[i]
		if p == "" {
			return scope{}, verr(ErrMalformed, "Credential has an empty %s.", field)
		}
		if i >= 2 && len(p) > maxScopeName {
			return scope{}, verr(ErrMalformed, "Credential %s is %d bytes long; it must be at most %d.", field, len(p), maxScopeName)
		}
	}
	if len(parts[1]) != 8 || strings.Trim(parts[1], "0123456789") != "" {
		return scope{}, verr(ErrMalformed, "Credential date %q must be YYYYMMDD.", parts[1])
	}
	return scope{parts[0], parts[1], parts[2], parts[3]}, nil
}

func parseAmzDate(s string) (time.Time, error) {
	t, err := time.Parse(amzDateLayout, s)
	if err != nil || len(s) != len(amzDateLayout) {
		return time.Time{}, verr(ErrMalformed, "X-Amz-Date %q must be YYYYMMDDTHHMMSSZ.", s)
	}
	return t, nil
}

func validSignature(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkScope checks the credential against the verifier's region, service
// and the request's date.
func (v *Verifier) checkScope(sc scope, amzDate string) error {
	if sc.date != amzDate[:8] {
		return verr(ErrMalformed, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'.", sc.date, amzDate[:8])
	}
	if v.Region != "" && sc.region != v.Region {
		return verr(ErrWrongScope, "Credential should be scoped to a valid region, not '%s'.", printable(sc.region))
	}
	if v.Service != "" && sc.service != v.Service {
		return verr(ErrWrongScope, "Credential should be scoped to correct service: '%s'.", v.Service)
	}
	return nil
}

// printable trims what a client sent before it goes into a message.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// lookup finds the credentials and checks the request's session token.
func (v *Verifier) lookup(ctx context.Context, accessKeyID, token string, now time.Time) (Credentials, error) {
	if v.Lookup == nil {
		return Credentials{}, errors.New("sigv4: verifier has no Lookup")
	}
	creds, err := v.Lookup(ctx, accessKeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownAccessKey) {
			return Credentials{}, verr(ErrUnknownAccessKey, "The security token included in the request is invalid.")
		}
		return Credentials{}, err
	}
	if creds.SessionToken != "" || token != "" {
		if !hmac.Equal([]byte(creds.SessionToken), []byte(token)) {
			return Credentials{}, verr(ErrInvalidToken, "The security token included in the request is invalid.")
		}
	}
	if !creds.Expires.IsZero() && !now.Before(creds.Expires) {
		return Credentials{}, verr(ErrExpiredToken, "The security token included in the request is expired")
	}
	return creds, nil
}

// VerifyPresigned checks a request made with a presigned URL (query
// authentication): the parameters, the time window, the credentials and the
// signature over the method, path, query, signed headers and payload hash.
// The payload hash is the body's (read up to MaxBodyBytes and put back),
// or UNSIGNED-PAYLOAD for S3 or when a signed X-Amz-Content-Sha256 says so.
func (v *Verifier) VerifyPresigned(ctx context.Context, r *http.Request) (*Result, error) {
	all, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, verr(ErrMalformed, "%s", strings.TrimPrefix(err.Error(), "sigv4: "))
	}
	var auth [7]string
	names := [7]string{ParamAlgorithm, ParamCredential, ParamDate, ParamExpires, ParamSignedHeaders, ParamSignature, ParamSecurityToken}
	own := make([]Param, 0, len(all))
	signed := make([]Param, 0, len(all))
	for _, p := range all {
		i := 0
		for i < len(names) && names[i] != p.Name {
			i++
		}
		if i == len(names) {
			if authParam(p.Name) {
				return nil, verr(ErrMalformed, "Query parameter %s must be spelled %s.", printable(p.Name), canonicalAuthName(p.Name))
			}
			own = append(own, p)
			signed = append(signed, p)
			continue
		}
		if auth[i] != "" {
			return nil, verr(ErrMalformed, "Query parameter %s appears more than once.", names[i])
		}
		if p.Value == "" {
			return nil, verr(ErrMalformed, "Query parameter %s is empty.", names[i])
		}
		auth[i] = p.Value
		if p.Name != ParamSignature {
			signed = append(signed, p)
		}
	}
	for i, name := range names[:6] {
		if auth[i] == "" {
			return nil, verr(ErrMalformed, "AWS query-string parameters must include '%s'. Re-examine the query-string parameters.", name)
		}
	}
	if auth[0] != Algorithm {
		return nil, verr(ErrMalformed, "X-Amz-Algorithm must be %s.", Algorithm)
	}
	sc, err := parseCredential(auth[1])
	if err != nil {
		return nil, err
	}
	t, err := parseAmzDate(auth[2])
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(sc, auth[2]); err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(auth[3])
	maxExp := v.MaxExpires
	if maxExp <= 0 {
		maxExp = MaxExpires
	}
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxExp {
		return nil, verr(ErrMalformed, "X-Amz-Expires %s must be a whole number of seconds from 1 to %d.", printable(auth[3]), int(maxExp/time.Second))
	}
	if !validSignature(auth[5]) {
		return nil, verr(ErrMalformed, "X-Amz-Signature must be 64 lower-case hex digits.")
	}
	hs, err := signedHeaders(r, auth[4])
	if err != nil {
		return nil, err
	}
	now := v.now().UTC()
	expires := t.Add(time.Duration(secs) * time.Second)
	if t.After(now.Add(v.skew())) {
		return nil, verr(ErrNotYetValid, "Signature not yet current: %s is still later than %s (%s + %s.)",
			auth[2], now.Add(v.skew()).Format(amzDateLayout), now.Format(amzDateLayout), minutes(v.skew()))
	}
	if now.After(expires) {
		return nil, verr(ErrExpired, "Signature expired: %s (X-Amz-Date %s + X-Amz-Expires %d s) is now earlier than %s.",
			expires.Format(amzDateLayout), auth[2], secs, now.Format(amzDateLayout))
	}
	creds, err := v.lookup(ctx, sc.accessKeyID, auth[6], now)
	if err != nil {
		return nil, err
	}
	// S3 signs query authentication with UNSIGNED-PAYLOAD; other services
	// sign the body's hash, the empty body's for the usual GET.
	payload := UnsignedPayload
	if sc.service != "s3" || r.Header.Get("X-Amz-Content-Sha256") != "" {
		if payload, err = v.payloadHash(r, hs, ""); err != nil {
			return nil, err
		}
	}
	canonical := appendCanonical(nil, r.Method, r.URL.EscapedPath(), signed, hs, payload, pathOptions{})
	if err := v.compare(creds, sc, []byte(auth[2]), canonical, auth[5]); err != nil {
		return nil, err
	}
	return &Result{Credentials: creds, AccessKeyID: sc.accessKeyID, Region: sc.region, Service: sc.service,
		SignedAt: t, ExpiresAt: expires, Query: own}, nil
}

func canonicalAuthName(name string) string {
	for _, n := range []string{ParamAlgorithm, ParamCredential, ParamDate, ParamExpires, ParamSecurityToken, ParamSignedHeaders, ParamSignature} {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return name
}

func minutes(d time.Duration) string {
	return strconv.Itoa(int(d/time.Minute)) + " min"
}

func (v *Verifier) compare(creds Credentials, sc scope, amzDate, canonical []byte, got string) error {
	key := v.keys.cache().entry(creds.SecretAccessKey, [8]byte([]byte(sc.date)), sc.region, sc.service)
	want := signature(key, amzDate, sc.region, sc.service, canonical)
	if !hmac.Equal(want[:], []byte(got)) {
		return verr(ErrSignatureMismatch, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return nil
}

// signedHeaders collects the request's values for a SignedHeaders list,
// which must be lower-case, sorted, unique and include host.
func signedHeaders(r *http.Request, list string) ([]header, error) {
	names := strings.Split(list, ";")
	hs := make([]header, 0, len(names))
	hasHost := false
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || i > 0 && n <= names[i-1] {
			return nil, verr(ErrMalformed, "SignedHeaders %s must be lower-case header names, sorted and separated by ';'.", printable(list))
		}
		switch n {
		case "host":
			hasHost = true
			hs = append(hs, header{name: n, value: stripDefaultPort(schemeOf(r), hostOf(r))})
		case "content-length":
			cl := r.Header.Values("Content-Length")
			if len(cl) == 0 && r.ContentLength >= 0 {
				cl = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
			hs = append(hs, header{name: n, values: cl})
		default:
			vals := r.Header.Values(n)
			if len(vals) == 0 {
				return nil, verr(ErrMalformed, "Signed header %s is missing from the request.", printable(n))
			}
			hs = append(hs, header{name: n, values: vals})
		}
	}
	if !hasHost {
		return nil, verr(ErrMalformed, "SignedHeaders must include host.")
	}
	return hs, nil
}

func schemeOf(r *http.Request) string {
	switch {
	case r.URL.Scheme != "":
		return r.URL.Scheme
	case r.TLS != nil:
		return "https"
	}
	return "http"
}

// VerifyRequest checks a request signed with the Authorization header.
// payloadHash is the body's hex SHA-256 as the caller computed it; if
// empty, the body is read (up to MaxBodyBytes), hashed and put back so the
// handler can still read it. An X-Amz-Content-Sha256 header must match that
// hash; it can say UNSIGNED-PAYLOAD only if it is signed.
func (v *Verifier) VerifyRequest(ctx context.Context, r *http.Request, payloadHash string) (*Result, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil, verr(ErrMissingAuth, "Missing Authentication Token")
	}
	a, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	sc, err := parseCredential(a.Credential)
	if err != nil {
		return nil, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return nil, verr(ErrMalformed, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	t, err := parseAmzDate(amzDate)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(sc, amzDate); err != nil {
		return nil, err
	}
	hs, err := signedHeaders(r, a.SignedHeaders)
	if err != nil {
		return nil, err
	}
	now := v.now().UTC()
	skew := v.skew()
	if t.After(now.Add(skew)) {
		return nil, verr(ErrNotYetValid, "Signature not yet current: %s is still later than %s (%s + %s.)",
			amzDate, now.Add(skew).Format(amzDateLayout), now.Format(amzDateLayout), minutes(skew))
	}
	if t.Before(now.Add(-skew)) {
		return nil, verr(ErrExpired, "Signature expired: %s is now earlier than %s (%s - %s.)",
			amzDate, now.Add(-skew).Format(amzDateLayout), now.Format(amzDateLayout), minutes(skew))
	}
	creds, err := v.lookup(ctx, sc.accessKeyID, r.Header.Get("X-Amz-Security-Token"), now)
	if err != nil {
		return nil, err
	}
	if payloadHash, err = v.payloadHash(r, hs, payloadHash); err != nil {
		return nil, err
	}
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, verr(ErrMalformed, "%s", strings.TrimPrefix(err.Error(), "sigv4: "))
	}
	canonical := appendCanonical(nil, r.Method, r.URL.EscapedPath(), q, hs, payloadHash, pathOptions{})
	if err := v.compare(creds, sc, []byte(amzDate), canonical, a.Signature); err != nil {
		return nil, err
	}
	return &Result{Credentials: creds, AccessKeyID: sc.accessKeyID, Region: sc.region, Service: sc.service,
		SignedAt: t, ExpiresAt: t.Add(skew)}, nil
}

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	Credential    string // ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request
	SignedHeaders string // lower-case names joined by ";"
	Signature     string // 64 hex digits
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…". Each of the three must appear once; spaces after the commas
// are optional.
func parseAuthorization(s string) (authorization, error) {
	rest, ok := strings.CutPrefix(s, Algorithm+" ")
	if !ok {
		return authorization{}, verr(ErrMalformed, "Authorization header must start with %s.", Algorithm)
	}
	var a authorization
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return authorization{}, verr(ErrMalformed, "Authorization header component %s must be name=value.", printable(strings.TrimSpace(part)))
		}
		var dst *string
		switch k {
		case "Credential":
			dst = &a.Credential
		case "SignedHeaders":
			dst = &a.SignedHeaders
		case "Signature":
			dst = &a.Signature
		default:
			return authorization{}, verr(ErrMalformed, "Authorization header component %s is not one of Credential, SignedHeaders, Signature.", printable(k))
		}
		if *dst != "" {
			return authorization{}, verr(ErrMalformed, "Authorization header has %s twice.", k)
		}
		if val == "" {
			return authorization{}, verr(ErrMalformed, "Authorization header has an empty %s.", k)
		}
		*dst = val
	}
	switch {
	case a.Credential == "":
		return authorization{}, verr(ErrMalformed, "Authorization header requires 'Credential' parameter.")
	case a.SignedHeaders == "":
		return authorization{}, verr(ErrMalformed, "Authorization header requires 'SignedHeaders' parameter.")
	case a.Signature == "":
		return authorization{}, verr(ErrMalformed, "Authorization header requires 'Signature' parameter.")
	case !validSignature(a.Signature):
		return authorization{}, verr(ErrMalformed, "Authorization header Signature must be 64 lower-case hex digits.")
	}
	return a, nil
}

// payloadHash returns the payload hash of r's canonical request: the
// body's, which given stands for when set, and which a claimed
// X-Amz-Content-Sha256 must equal, or UNSIGNED-PAYLOAD when a signed
// header says so. A client's claim alone never replaces hashing the body.
func (v *Verifier) payloadHash(r *http.Request, signed []header, given string) (string, error) {
	claimed := r.Header.Get("X-Amz-Content-Sha256")
	if claimed == UnsignedPayload {
		for _, h := range signed {
			if h.name == "x-amz-content-sha256" {
				return UnsignedPayload, nil
			}
		}
		return "", verr(ErrSignatureMismatch, "X-Amz-Content-Sha256 may be UNSIGNED-PAYLOAD only as a signed header.")
	}
	hash := given
	if hash == "" {
		var err error
		if hash, err = v.hashBody(r); err != nil {
			return "", err
		}
	}
	if claimed != "" && claimed != hash {
		return "", verr(ErrSignatureMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return hash, nil
}

// hashBody reads the body a server received, hashes it and puts it back.
func (v *Verifier) hashBody(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return EmptyPayloadHash, nil
	}
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = 10 << 20
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		return "", fmt.Errorf("sigv4: reading body: %w", err)
	}
	if int64(len(data)) > limit {
		return "", verr(ErrMalformed, "Request body is larger than %d bytes.", limit)
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
