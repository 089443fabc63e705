package vend

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// Config is the configuration of a vending server, as kept in its JSON file
// (see docs/vend.md). Every field says what its zero value means; the zero
// Config is not usable on its own, because it lets nobody in.
type Config struct {
	// Addr is where kvssign serve listens. If empty, 127.0.0.1:8080.
	Addr string `json:"addr,omitempty"`
	// Region is the AWS region of the channels. If empty, the AWS SDK's
	// default (AWS_REGION or the profile's region).
	Region string `json:"region,omitempty"`
	// ARNRegions lists the regions of the channel ARNs a caller may give.
	// If empty, Region; if that is empty too, the region of the first
	// channel the server resolves by name.
	ARNRegions []string `json:"arnRegions,omitempty"`
	// ARNAccounts lists the accounts of the channel ARNs a caller may
	// give. If empty, the account of the first channel the server
	// resolves by name (until then, any).
	ARNAccounts []string `json:"arnAccounts,omitempty"`
	// Profile is the shared-config profile for the AWS credentials chain.
	// If empty, the SDK's default.
	Profile string `json:"profile,omitempty"`
	// EndpointURL sends every AWS call to this base URL instead of AWS, as
	// the aws CLI's --endpoint-url does (for the emulator). If empty, AWS.
	EndpointURL string `json:"endpointUrl,omitempty"`
	// LogLevel is debug, info, warn or error. If empty, info.
	LogLevel string `json:"logLevel,omitempty"`
	// TLS, if set, makes kvssign serve speak HTTPS itself. Without it, put
	// the server behind a TLS-terminating load balancer.
	TLS *TLSConfig `json:"tls,omitempty"`

	// URLExpires is how long a vended URL stays valid, whole seconds from
	// 1s to 300s. If zero, 299s.
	URLExpires Duration `json:"urlExpires,omitempty"`
	// Auth says who may call. At least one token or a JWT issuer is needed.
	Auth Auth `json:"auth"`
	// Rules say what each caller may do. A request is allowed when some
	// rule allows it; with no rules, nothing is allowed.
	Rules []Rule `json:"rules"`
	// Limits bound request rates, sizes and times.
	Limits Limits `json:"limits,omitzero"`
	// CORS lists the browser origins that may call the API. If empty, no
	// browser page from another origin may.
	CORS CORS `json:"cors,omitzero"`
	// TrustedProxies lists the addresses or CIDR prefixes of load
	// balancers whose X-Forwarded-For header is believed. If empty, the
	// client address is the connection's peer.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// HSTS sends Strict-Transport-Security. Set it when clients reach the
	// server only over HTTPS.
	HSTS bool `json:"hsts,omitempty"`
	// ScopedCredentials, if set, signs each URL with temporary credentials
	// from STS AssumeRole whose session policy allows only the one
	// connect action on the one channel.
	ScopedCredentials *ScopedCredentials `json:"scopedCredentials,omitempty"`
	// Cache tunes the cache of channel ARNs, endpoints and ICE servers.
	Cache Cache `json:"cache,omitzero"`
	// Shutdown tunes the graceful shutdown of kvssign serve.
	Shutdown Shutdown `json:"shutdown,omitzero"`
	// Redis, if its URL is set, makes the copies of the server that name
	// the same Redis share one cache, one set of rate limits and one AWS
	// call budget (see [NewFleet] and docs/deploy.md for its fields). If
	// zero, each copy keeps its own.
	Redis redisConfig `json:"redis,omitzero"`
	// Budget caps the AWS calls per second, per operation (see
	// [BudgetUpstream] and docs/deploy.md for its fields). If zero, KVS's
	// quotas less a safety margin.
	Budget awsBudget `json:"budget,omitzero"`
}

// TLSConfig names the certificate and key files for HTTPS.
type TLSConfig struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// Auth configures how callers authenticate: an Authorization header with
// "Bearer " and either a static token or a JWT.
type Auth struct {
	// Tokens are static bearer tokens, for services and devices.
	Tokens []Token `json:"tokens,omitempty"`
	// JWT, if set, accepts JSON Web Tokens from one issuer.
	JWT *JWT `json:"jwt,omitempty"`
}

// Token is a static bearer token, stored as its SHA-256 hash; produce one
// with "kvssign serve hash-token". Its caller's principal id is
// "token:" + Name.
type Token struct {
	// Name identifies the caller in rules, logs and client ids: 1 to 64
	// characters of a-z A-Z 0-9 _ -.
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `json:"sha256"`
	// Groups are matched by [Rule.Groups].
	Groups []string `json:"groups,omitempty"`
}

// JWT configures JSON Web Token authentication. A JWT caller's principal
// id is "jwt:" + its subject.
type JWT struct {
	// Issuer must equal the token's iss claim. Required.
	Issuer string `json:"issuer"`
	// Audience lists accepted aud values; the token must name one. Required.
	Audience []string `json:"audience"`
	// Algorithms lists the accepted signing algorithms, of HS256, RS256 and
	// ES256. If empty, RS256 and ES256, and HS256 when HMACSecretEnv is set.
	Algorithms []string `json:"algorithms,omitempty"`
	// JWKSURL is where the issuer publishes its public keys (https, or
	// http on loopback). Keys are cached and refreshed every JWKSRefresh,
	// and at most once a minute when a token names an unknown key.
	JWKSURL string `json:"jwksUrl,omitempty"`
	// JWKS is an inline key set, used besides JWKSURL.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// HMACSecretEnv names the environment variable that holds the HS256
	// secret (at least 32 bytes). The secret is never kept in the file.
	HMACSecretEnv string `json:"hmacSecretEnv,omitempty"`
	// JWKSRefresh is how often the key set is fetched again. If zero, 1h.
	JWKSRefresh Duration `json:"jwksRefresh,omitempty"`
	// Leeway is the clock skew allowed on exp, nbf and iat. If zero, 30s.
	Leeway Duration `json:"leeway,omitempty"`
	// GroupsClaim names the claim (a string or a list of strings) that
	// holds the caller's groups. If empty, "groups".
	GroupsClaim string `json:"groupsClaim,omitempty"`
}

// Rule allows some callers some roles on some channels. A caller matches
// when Principals (if set) has a pattern matching its principal id and
// Groups (if set) names one of its groups; a rule sets at least one.
// Patterns are globs: * matches any run of characters, ? one character.
type Rule struct {
	// Principals are patterns over principal ids, such as "token:camera-*"
	// or "jwt:*".
	Principals []string `json:"principals,omitempty"`
	// Groups are groups of which the caller must have one.
	Groups []string `json:"groups,omitempty"`
	// Channels are patterns over channel names. Required.
	Channels []string `json:"channels"`
	// Roles lists MASTER, VIEWER or both. Required.
	Roles []string `json:"roles"`
	// CreateChannel lets the caller create a missing channel by asking
	// with "create": true.
	CreateChannel bool `json:"createChannel,omitempty"`
	// AnyClientID lets the caller choose any viewer client id. Without it
	// a viewer's client id is bound to the caller: it is the caller's
	// base id, or the base id, a dot and a suffix of the caller's choice.
	// Grant it only to trusted backends that vend for their own users.
	AnyClientID bool `json:"anyClientId,omitempty"`
}

// Limits bound what one caller, one address and one request may use.
type Limits struct {
	// PerIP limits requests per client address (per /64 for IPv6),
	// checked before authentication. If zero, 10/s with a burst of 20.
	PerIP Rate `json:"perIp,omitzero"`
	// PerPrincipal limits requests per authenticated caller. If zero, 5/s
	// with a burst of 10.
	PerPrincipal Rate `json:"perPrincipal,omitzero"`
	// MaxBodyBytes bounds a request body. If zero, 4096.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// MaxHeaderBytes bounds the request headers. If zero, 16384.
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// MaxInFlight bounds the connection requests worked on at once; more
	// wait for one to finish, up to half of RequestTimeout, and are then
	// answered 503 with Retry-After. If zero, 128 per CPU; negative means
	// no bound.
	MaxInFlight int `json:"maxInFlight,omitempty"`
	// MaxConnections bounds the connections open at once: past it, the
	// server takes no new one until one closes (they wait in the
	// kernel's accept queue), and to make room it answers with
	// Connection: close and closes the keep-alive connection idle the
	// longest. A client that opens a connection
	// and sends nothing holds its place for up to ReadHeaderTimeout: set
	// it behind a load balancer that forwards whole requests. It holds
	// when the server is served with [Server.Listener] and
	// [Server.HTTPServer] together. If zero, no bound.
	MaxConnections int `json:"maxConnections,omitempty"`
	// RequestTimeout bounds the work on one request, AWS calls included.
	// If zero, 10s.
	RequestTimeout Duration `json:"requestTimeout,omitempty"`
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// HTTP server's. If zero, 5s, 10s, 20s and 60s.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitempty"`
	ReadTimeout       Duration `json:"readTimeout,omitempty"`
	WriteTimeout      Duration `json:"writeTimeout,omitempty"`
	IdleTimeout       Duration `json:"idleTimeout,omitempty"`
}

// Rate is a token-bucket rate limit.
type Rate struct {
	// PerSecond is the sustained rate. Negative means unlimited.
	PerSecond float64 `json:"perSecond"`
	// Burst is how many requests may come at once. If zero, twice
	// PerSecond (at least 1).
	Burst int `json:"burst,omitempty"`
}

// CORS configures cross-origin requests from browsers.
type CORS struct {
	// AllowedOrigins are origins such as "https://app.example.com"; a
	// leading "*." in the host, as in "https://*.example.com", matches any
	// subdomain.
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	// MaxAge is how long a browser may cache a preflight. If zero, 10m.
	MaxAge Duration `json:"maxAge,omitempty"`
}

// ScopedCredentials configures per-channel credentials from STS.
type ScopedCredentials struct {
	// RoleARN is the IAM role to assume; it needs kinesisvideo:ConnectAs*
	// on the channels, and the server's own credentials need
	// sts:AssumeRole on it. Required.
	RoleARN string `json:"roleArn"`
	// Duration is how long each set of credentials lives, 15m to 12h. If
	// zero, 15m. Credentials are cached per channel and role until they
	// would expire before a URL signed with them.
	Duration Duration `json:"duration,omitempty"`
	// SessionName is the role session name. If empty, "kvssign-vend".
	SessionName string `json:"sessionName,omitempty"`
	// ExternalID is passed to AssumeRole when the role requires one.
	ExternalID string `json:"externalId,omitempty"`
}

// Cache tunes how long resolved channel information is used.
type Cache struct {
	// TTL is how long a channel's ARN and endpoints are used before they
	// are resolved again. If zero, the backend's default.
	TTL Duration `json:"ttl,omitempty"`
	// StaleFor is how long past its expiry cached information is still
	// served while AWS fails (throttling, 5xx, timeouts). If zero, the
	// backend's default.
	StaleFor Duration `json:"staleFor,omitempty"`
	// NotFoundFor is how long a channel AWS says does not exist is
	// answered with 404 without asking again. If zero, the backend's
	// default (a few seconds).
	NotFoundFor Duration `json:"notFoundFor,omitempty"`
}

// Shutdown tunes graceful shutdown.
type Shutdown struct {
	// Delay is how long /readyz reports 503 before the listener closes, so
	// that a load balancer stops sending new requests. If zero, none.
	Delay Duration `json:"delay,omitempty"`
	// Timeout bounds the wait for requests in flight. If zero, 20s.
	Timeout Duration `json:"timeout,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string such as "5s" or "1m30s".
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "300ms" or "5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q must be a duration such as \"5s\"", s)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("vend: config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return c, nil
}

// ParseConfig decodes a JSON configuration and validates it. Unknown fields
// are errors, so that a misspelt setting is not silently ignored.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("vend: config: %s", describeJSONError(data, err))
	}
	if dec.More() {
		return Config{}, errors.New("vend: config: more than one JSON value")
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// describeJSONError turns a decoding error into a message that names the
// field or the line.
func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("line %d: %v", line, se)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: must be %s, not %s", te.Field, te.Type, te.Value)
	}
	// Others, such as an unknown field, have no type of their own; their
	// text names the field.
	return err.Error()
}

// Validate checks c and names the first field that is wrong and the rule
// it breaks.
func (c *Config) Validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("vend: config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fail("addr", "%q must be host:port", c.Addr)
		}
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fail("logLevel", "%q must be debug, info, warn or error", c.LogLevel)
	}
	if c.EndpointURL != "" {
		u, err := url.Parse(c.EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fail("endpointUrl", "%q must be an http or https URL", c.EndpointURL)
		}
	}
	for i, r := range c.ARNRegions {
		if !validName(r, 32) || strings.Trim(r, "-") != r {
			return fail(fmt.Sprintf("arnRegions[%d]", i), "%q must be a region name such as us-west-2", r)
		}
	}
	for i, a := range c.ARNAccounts {
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			return fail(fmt.Sprintf("arnAccounts[%d]", i), "%q must be a 12-digit account id", a)
		}
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		return fail("tls", "needs both certFile and keyFile")
	}
	if e := c.URLExpires.D(); e != 0 && (e < time.Second || e > kvs.UseWithin || e%time.Second != 0) {
		return fail("urlExpires", "%v must be whole seconds from 1s to %v: a vended URL is a bearer credential, and KVS takes a URL only within %v of signing anyway", e, kvs.UseWithin, kvs.UseWithin)
	}
	if err := c.Auth.validate(fail); err != nil {
		return err
	}
	for i, r := range c.Rules {
		if err := r.validate(fmt.Sprintf("rules[%d]", i), fail); err != nil {
			return err
		}
	}
	if err := c.Limits.validate(fail); err != nil {
		return err
	}
	for i, o := range c.CORS.AllowedOrigins {
		if err := validateOrigin(o); err != nil {
			return fail(fmt.Sprintf("cors.allowedOrigins[%d]", i), "%q %v", o, err)
		}
	}
	if c.CORS.MaxAge < 0 {
		return fail("cors.maxAge", "must not be negative")
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		return fail("trustedProxies", "%v", err)
	}
	if s := c.ScopedCredentials; s != nil {
		if !strings.HasPrefix(s.RoleARN, "arn:") || !strings.Contains(s.RoleARN, ":role/") {
			return fail("scopedCredentials.roleArn", "%q must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", s.RoleARN)
		}
		if d := s.Duration.D(); d != 0 && (d < 15*time.Minute || d > 12*time.Hour) {
			return fail("scopedCredentials.duration", "%v must be from 15m to 12h (the STS limits)", d)
		}
		if n := s.SessionName; n != "" && !validSessionName(n) {
			return fail("scopedCredentials.sessionName", "%q must be 2 to 64 characters of a-z A-Z 0-9 _ + = , . @ -", n)
		}
	}
	if err := notNegative(fail, "cache.", namedDuration{"ttl", c.Cache.TTL}, namedDuration{"staleFor", c.Cache.StaleFor}, namedDuration{"notFoundFor", c.Cache.NotFoundFor}); err != nil {
		return err
	}
	if err := notNegative(fail, "shutdown.", namedDuration{"delay", c.Shutdown.Delay}, namedDuration{"timeout", c.Shutdown.Timeout}); err != nil {
		return err
	}
	return c.validateFleet(fail)
}

type failFunc func(field, format string, args ...any) error

func (a *Auth) validate(fail failFunc) error {
	if len(a.Tokens) == 0 && a.JWT == nil {
		return fail("auth", "needs tokens or jwt: without them nobody can call")
	}
	names := make(map[string]bool)
	hashes := make(map[string]bool)
	for i, t := range a.Tokens {
		f := fmt.Sprintf("auth.tokens[%d]", i)
		if !validName(t.Name, 64) {
			return fail(f+".name", "%q must be 1 to 64 characters of a-z A-Z 0-9 _ -", t.Name)
		}
		if names[t.Name] {
			return fail(f+".name", "%q is used twice", t.Name)
		}
		names[t.Name] = true
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			return fail(f+".sha256", "must be 64 hex digits (the SHA-256 of the token; see kvssign serve hash-token)")
		}
		h := strings.ToLower(t.SHA256)
		if hashes[h] {
			return fail(f+".sha256", "is the hash of another token too")
		}
		hashes[h] = true
		if err := validateGroups(t.Groups); err != nil {
			return fail(f+".groups", "%v", err)
		}
	}
	if j := a.JWT; j != nil {
		if j.Issuer == "" {
			return fail("auth.jwt.issuer", "is required")
		}
		if len(j.Audience) == 0 {
			return fail("auth.jwt.audience", "needs at least one audience")
		}
		for _, alg := range j.Algorithms {
			switch alg {
			case "HS256", "RS256", "ES256":
			default:
				return fail("auth.jwt.algorithms", "%q must be HS256, RS256 or ES256", alg)
			}
		}
		hasHS := j.HMACSecretEnv != ""
		needsKeys := len(j.Algorithms) == 0
		for _, alg := range j.Algorithms {
			if alg == "HS256" && !hasHS {
				return fail("auth.jwt.hmacSecretEnv", "is required for HS256")
			}
			if alg != "HS256" {
				needsKeys = true
			}
		}
		if needsKeys && j.JWKSURL == "" && len(j.JWKS) == 0 && !(len(j.Algorithms) == 0 && hasHS) {
			return fail("auth.jwt", "RS256 and ES256 need jwksUrl or jwks")
		}
		if j.JWKSURL != "" {
			if err := validateJWKSURL(j.JWKSURL); err != nil {
				return fail("auth.jwt.jwksUrl", "%q %v", j.JWKSURL, err)
			}
		}
		if len(j.JWKS) > 0 {
			if _, err := parseJWKS(j.JWKS); err != nil {
				return fail("auth.jwt.jwks", "%v", err)
			}
		}
		if j.JWKSRefresh.D() < 0 || j.Leeway.D() < 0 || j.Leeway.D() > 5*time.Minute {
			return fail("auth.jwt", "jwksRefresh must not be negative and leeway must be from 0 to 5m")
		}
	}
	return nil
}

func validateJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errors.New("must be an https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip, err := netip.ParseAddr(u.Hostname()); (err == nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return errors.New("must be https (http only on loopback)")
	}
	return errors.New("must be an https URL")
}

func (r *Rule) validate(f string, fail failFunc) error {
	if len(r.Principals) == 0 && len(r.Groups) == 0 {
		return fail(f, "needs principals or groups to say whom it allows")
	}
	for i, p := range r.Principals {
		if p == "" || len(p) > 512 {
			return fail(fmt.Sprintf("%s.principals[%d]", f, i), "must be 1 to 512 characters")
		}
		if !strings.HasPrefix(p, "token:") && !strings.HasPrefix(p, "jwt:") && p != "*" {
			return fail(fmt.Sprintf("%s.principals[%d]", f, i), "%q must start with token: or jwt: (or be *)", p)
		}
	}
	if err := validateGroups(r.Groups); err != nil {
		return fail(f+".groups", "%v", err)
	}
	if len(r.Channels) == 0 {
		return fail(f+".channels", "needs at least one channel name or pattern")
	}
	for i, c := range r.Channels {
		if c == "" || len(c) > 256 || !charsIn(c, "*?") {
			return fail(fmt.Sprintf("%s.channels[%d]", f, i), "%q must be a channel name or a pattern of a-z A-Z 0-9 _ . - * ?", c)
		}
	}
	if len(r.Roles) == 0 {
		return fail(f+".roles", "needs MASTER, VIEWER or both")
	}
	for i, s := range r.Roles {
		if _, err := kvs.ParseRole(s); err != nil {
			return fail(fmt.Sprintf("%s.roles[%d]", f, i), "%q must be MASTER or VIEWER", s)
		}
	}
	return nil
}

func (l *Limits) validate(fail failFunc) error {
	for _, r := range []struct {
		name string
		r    Rate
	}{{"limits.perIp", l.PerIP}, {"limits.perPrincipal", l.PerPrincipal}} {
		if r.r.Burst < 0 {
			return fail(r.name+".burst", "must not be negative")
		}
	}
	if l.MaxConnections < 0 {
		return fail("limits.maxConnections", "must not be negative (0: no bound)")
	}
	if l.MaxBodyBytes < 0 || l.MaxBodyBytes > 1<<20 {
		return fail("limits.maxBodyBytes", "must be from 0 to 1048576")
	}
	if l.MaxHeaderBytes != 0 && (l.MaxHeaderBytes < 4097 || l.MaxHeaderBytes > 1<<20) {
		// Below 4097, net/http's own 4096 bytes of slack would win.
		return fail("limits.maxHeaderBytes", "must be 0 (16384) or from 4097 to 1048576")
	}
	return notNegative(fail, "limits.", namedDuration{"requestTimeout", l.RequestTimeout}, namedDuration{"readHeaderTimeout", l.ReadHeaderTimeout},
		namedDuration{"readTimeout", l.ReadTimeout}, namedDuration{"writeTimeout", l.WriteTimeout}, namedDuration{"idleTimeout", l.IdleTimeout})
}

// namedDuration is a duration field of the configuration, by its name.
type namedDuration struct {
	name string
	d    Duration
}

// notNegative fails on the first of ds that is negative, naming it under
// section (e.g. "limits.").
func notNegative(fail failFunc, section string, ds ...namedDuration) error {
	for _, d := range ds {
		if d.d < 0 {
			return fail(section+d.name, "%v must not be negative", d.d.D())
		}
	}
	return nil
}

func validateGroups(gs []string) error {
	for _, g := range gs {
		if g == "" || len(g) > 256 {
			return fmt.Errorf("group %q must be 1 to 256 characters", g)
		}
	}
	return nil
}

// validateOrigin accepts scheme://host[:port], with an optional "*." at the
// start of the host.
// parsePrefixes parses addresses and CIDR prefixes.
func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q must be an IP address or a CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// validName reports whether s is 1 to max characters of a-z A-Z 0-9 _ -.
func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// charsIn reports whether s has only channel-name characters and extra.
func charsIn(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameByte(c) && c != '.' && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

func validSessionName(s string) bool {
	if len(s) < 2 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) && strings.IndexByte("+=,.@", s[i]) < 0 {
			return false
		}
	}
	return true
}

// urlExpires returns the URL lifetime the config asks for.
func (c *Config) urlExpires() time.Duration {
	if c.URLExpires == 0 {
		return kvs.DefaultExpires
	}
	return c.URLExpires.D()
}

func orDuration(d Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// formatSeconds formats a Retry-After value: whole seconds, at least 1.
func formatSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
