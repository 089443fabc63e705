// Caller authentication: static bearer tokens kept as SHA-256 hashes, and
// JWTs verified with an HMAC secret or the issuer's published keys.

package vend

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// principal is an authenticated caller.
type principal struct {
	// id is "token:NAME" or "jwt:SUBJECT": what rules match and logs show.
	id     string
	groups []string
	// clientBase is the viewer client id the caller is bound to: a viewer
	// connects as clientBase or clientBase + "." + a suffix.
	clientBase string
}

// authError is why a caller was not let in. Its message is safe to show.
type authError struct {
	reason  string // a metric label: missing, malformed, unknown, expired, invalid
	message string
}

func (e *authError) Error() string { return e.message }

var (
	errNoToken = &authError{"missing", "an Authorization header with a Bearer token is required"}
	errBadAuth = &authError{"malformed", "the Authorization header must be \"Bearer\" and a token"}
	errUnknown = &authError{"unknown", "the bearer token is not valid"}
	errExpired = &authError{"expired", "the token has expired"}
	// errIssuerDown is answered with 503: the token may be good.
	errIssuerDown = &authError{"issuer_unavailable", "the token's issuer cannot be reached to check its key; retry later"}
)

// maxTokenLength bounds a bearer token; JWTs with many claims stay well
// under it.
const maxTokenLength = 8192

// authenticator checks bearer tokens.
type authenticator struct {
	tokens map[[32]byte]*principal
	jwt    *jwtAuth
}

func newAuthenticator(a Auth, clock func() time.Time, client httpDoer, getenv func(string) string, log *slog.Logger) (*authenticator, error) {
	au := &authenticator{tokens: make(map[[32]byte]*principal, len(a.Tokens))}
	for _, t := range a.Tokens {
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(t.SHA256)); err != nil {
			return nil, fmt.Errorf("vend: token %q: sha256 must be 64 hex digits", t.Name)
		}
		au.tokens[h] = &principal{id: "token:" + t.Name, groups: t.Groups, clientBase: "token-" + t.Name}
	}
	if a.JWT != nil {
		j, err := newJWTAuth(*a.JWT, clock, client, getenv, log)
		if err != nil {
			return nil, err
		}
		au.jwt = j
	}
	return au, nil
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) (string, *authError) {
	if h == "" {
		return "", errNoToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errBadAuth
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" || len(tok) > maxTokenLength {
		return "", errBadAuth
	}
	for i := 0; i < len(tok); i++ {
		// RFC 6750 b64token characters.
		c := tok[i]
		if !isNameByte(c) && strings.IndexByte(".~+/=", c) < 0 {
			return "", errBadAuth
		}
	}
	return tok, nil
}

// authenticate returns the caller that tok identifies.
// A token is looked up among the static ones first, so that a static token
// of any shape works; one with two dots is then checked as a JWT.
func (a *authenticator) authenticate(ctx context.Context, tok string) (*principal, *authError) {
	if p := a.tokens[tokenHash(tok)]; p != nil {
		return p, nil
	}
	if a.jwt != nil && strings.Count(tok, ".") == 2 {
		return a.jwt.verify(ctx, tok)
	}
	return nil, errUnknown
}

// tokenHash returns the SHA-256 of tok. A token of usual length is copied
// to the stack to be hashed: converting it to a slice costs an allocation
// per request.
func tokenHash(tok string) [sha256.Size]byte {
	var buf [256]byte
	if len(tok) <= len(buf) {
		return sha256.Sum256(append(buf[:0], tok...))
	}
	return sha256.Sum256([]byte(tok))
}

// HashToken returns the hex SHA-256 of a bearer token, as kept in
// [Token.SHA256].
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// jwtAuth verifies JWTs from one issuer.
type jwtAuth struct {
	parser      *jwt.Parser
	hmacSecret  []byte
	keys        *keySet
	groupsClaim string
	clock       func() time.Time

	// verified caches recently verified tokens by their hash, so a caller
	// that asks again does not cost another signature check.
	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

// verifiedToken is a cache entry: the caller, and until when the entry may
// be used (the token's expiry, but at most verifiedFor after the check, so
// that a key removed from the issuer's set stops working soon).
type verifiedToken struct {
	p     *principal
	until time.Time
}

const verifiedFor = 5 * time.Minute

const verifiedCacheSize = 4096

func newJWTAuth(c JWT, clock func() time.Time, client httpDoer, getenv func(string) string, log *slog.Logger) (*jwtAuth, error) {
	algs := c.Algorithms
	if len(algs) == 0 {
		if c.JWKSURL != "" || len(c.JWKS) > 0 {
			algs = []string{"RS256", "ES256"}
		}
		if c.HMACSecretEnv != "" {
			algs = append(algs, "HS256")
		}
	}
	j := &jwtAuth{groupsClaim: c.GroupsClaim, clock: clock, verified: make(map[[32]byte]verifiedToken)}
	if j.groupsClaim == "" {
		j.groupsClaim = "groups"
	}
	if c.HMACSecretEnv != "" {
		s := getenv(c.HMACSecretEnv)
		if len(s) < 32 {
			return nil, fmt.Errorf("vend: config: auth.jwt.hmacSecretEnv: environment variable %s must hold a secret of at least 32 bytes", c.HMACSecretEnv)
		}
		j.hmacSecret = []byte(s)
	}
	if c.JWKSURL != "" || len(c.JWKS) > 0 {
		ks, err := newKeySet(c.JWKSURL, c.JWKS, orDuration(c.JWKSRefresh, time.Hour), clock, client, log)
		if err != nil {
			return nil, err
		}
		j.keys = ks
	}
	leeway := orDuration(c.Leeway, 30*time.Second)
	j.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(clock),
	)
	return j, nil
}

func (j *jwtAuth) verify(ctx context.Context, tok string) (*principal, *authError) {
	h := tokenHash(tok)
	now := j.clock()
	j.mu.Lock()
	v, ok := j.verified[h]
	j.mu.Unlock()
	if ok && now.Before(v.until) {
		return v.p, nil
	}
	var claims jwt.MapClaims
	_, err := j.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) { return j.key(ctx, t) })
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, errExpired
		}
		if errors.Is(err, errIssuerUnavailable) {
			return nil, errIssuerDown
		}
		// The library's message says which check failed without quoting the
		// token; it is still kept out of responses, which say only this.
		return nil, &authError{"invalid", "the JWT is not valid: " + jwtReason(err)}
	}
	sub, _ := claims.GetSubject()
	if sub == "" || len(sub) > 256 {
		return nil, &authError{"invalid", "the JWT is not valid: its sub claim must be 1 to 256 characters"}
	}
	until := now.Add(verifiedFor)
	if exp, _ := claims.GetExpirationTime(); exp != nil && exp.Time.Before(until) {
		until = exp.Time
	}
	p := &principal{id: "jwt:" + sub, groups: stringsClaim(claims[j.groupsClaim]), clientBase: jwtClientBase(sub)}
	j.mu.Lock()
	if len(j.verified) >= verifiedCacheSize {
		for k, v := range j.verified {
			if !now.Before(v.until) || len(j.verified) >= verifiedCacheSize {
				delete(j.verified, k)
			}
		}
	}
	j.verified[h] = verifiedToken{p: p, until: until}
	j.mu.Unlock()
	return p, nil
}

// jwtReason names the check a token failed, in words safe to show.
func jwtReason(err error) string {
	for _, c := range []struct {
		err error
		msg string
	}{
		{jwt.ErrTokenMalformed, "malformed"},
		{jwt.ErrTokenSignatureInvalid, "bad signature"},
		{jwt.ErrTokenUnverifiable, "no key to verify it"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenNotValidYet, "not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "issued in the future"},
		{jwt.ErrTokenRequiredClaimMissing, "a required claim (exp, iss or aud) is missing"},
	} {
		if errors.Is(err, c.err) {
			return c.msg
		}
	}
	return "rejected"
}

// key returns the verification key for t, of the type its algorithm needs,
// so that a key is never used with another algorithm.
func (j *jwtAuth) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		if j.hmacSecret == nil {
			return nil, errors.New("no HMAC secret")
		}
		return j.hmacSecret, nil
	}
	if j.keys == nil {
		return nil, errors.New("no key set")
	}
	kid, _ := t.Header["kid"].(string)
	k, err := j.keys.lookup(ctx, kid, alg)
	if err != nil {
		return nil, err
	}
	switch alg {
	case "RS256":
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
	case "ES256":
		if ek, ok := k.(*ecdsa.PublicKey); ok {
			return ek, nil
		}
	}
	return nil, fmt.Errorf("key %q does not fit %s", kid, alg)
}

// stringsClaim reads a claim that is a string or a list of strings. A
// string is one value, spaces and all: splitting "Not family" would grant
// the group "family".
func stringsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// jwtClientBase derives a viewer client id from a JWT subject: "jwt-" and
// the subject when it is short and made of a-z A-Z 0-9 _ -, otherwise
// "jwth-" and a hash of it. The two forms cannot collide, and neither can
// collide with a static token's "token-NAME", so no caller can take
// another's client id.
func jwtClientBase(sub string) string {
	if validName(sub, 128) {
		return "jwt-" + sub
	}
	h := sha256.Sum256([]byte(sub))
	return "jwth-" + hex.EncodeToString(h[:12])
}

// osGetenv is the default environment lookup.
var osGetenv = os.Getenv
