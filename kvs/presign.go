package kvs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// Expiry limits for a signaling URL. KVS accepts X-Amz-Expires up to
// SigV4's seven days (the C SDK signs with the remaining life of its
// credentials, up to that), but a longer Expires does not make a URL usable
// for longer: KVS also refuses a URL more than [UseWithin] after its
// X-Amz-Date. A URL is usable until the earlier of the two. The JS SDK and
// AWS's samples sign with 299 seconds.
const (
	DefaultExpires = 299 * time.Second
	MaxExpires     = 7 * 24 * time.Hour
	UseWithin      = 5 * time.Minute
)

// A Presigner signs ConnectAsMaster and ConnectAsViewer URLs. It is safe
// for concurrent use. The endpoint and channel ARN are checked and escaped
// the first time a channel is signed for a role; later URLs come from a
// [sigv4.Template] the Presigner keeps (up to 1,024 of them), with the
// signing keys it derived, which is what makes signing take about a
// microsecond and a half. Do not copy a Presigner after first use (go vet
// reports copies): set the fields, then share a pointer.
type Presigner struct {
	// Credentials supplies the keys to sign with. Required.
	Credentials sigv4.CredentialsProvider
	// Region is the signing region. If empty, the channel ARN's region is
	// used; if set, it must equal the ARN's region.
	Region string
	// Expires is the URL's X-Amz-Expires, 1 s to [MaxExpires]. If zero,
	// DefaultExpires.
	Expires time.Duration
	// Clock returns the current time. If nil, time.Now is used.
	Clock func() time.Time
	// Skew, if set, holds the offset added to the clock, to correct a
	// device clock that is off: give a known one with [NewClockSkew], or
	// let the signaling client learn it from the service's refusals
	// (signaling.Presigned sets a Skew if there is none).
	Skew *ClockSkew
	// Trace, if set, receives each canonical request and string to sign.
	// They hold the session token: pass them through sigv4.Redact before
	// showing them.
	Trace func(canonicalRequest, stringToSign string)

	cache atomic.Pointer[templateCache]
}

// SignedURL is a presigned signaling URL and what it was signed for. The URL
// is a bearer credential until ExpiresAt, the earlier of SignedAt plus
// X-Amz-Expires and SignedAt plus [UseWithin]: do not log it.
type SignedURL struct {
	URL        string
	Role       Role
	ChannelARN string
	ClientID   string // empty for a master
	SignedAt   time.Time
	ExpiresAt  time.Time
}

// Presign signs a URL to connect to a signaling channel. endpoint is the WSS
// endpoint GetSignalingChannelEndpoint returned for role (wss://, or ws://
// for a local emulator), without a query. A viewer needs a client id; a
// master must not have one.
func (p *Presigner) Presign(ctx context.Context, endpoint, channelARN string, role Role, clientID string) (SignedURL, error) {
	if p.Credentials == nil {
		return SignedURL{}, errors.New("kvs: presigner has no credentials provider")
	}
	expires := p.Expires
	if expires == 0 {
		expires = DefaultExpires
	}
	t, err := p.template(endpoint, channelARN, role, expires)
	if err != nil {
		return SignedURL{}, err
	}
	switch role {
	case Master:
		if clientID != "" {
			return SignedURL{}, fieldError("client id", clientID, "a master connects without a client id")
		}
	case Viewer:
		if err := ValidateClientID(clientID); err != nil {
			return SignedURL{}, err
		}
	}
	creds, err := p.Credentials.Retrieve(ctx)
	if err != nil {
		return SignedURL{}, fmt.Errorf("kvs: retrieving credentials: %w", err)
	}
	var now time.Time
	if p.Clock != nil {
		now = p.Clock()
	} else {
		now = time.Now()
	}
	now = now.Add(p.Skew.Offset()).UTC().Truncate(time.Second)
	usable := min(expires, UseWithin)
	if creds.ExpiresWithin(now, usable) {
		return SignedURL{}, fmt.Errorf("kvs: credentials for %s expire at %s, before the URL would (%s): renew them first",
			creds.AccessKeyID, creds.Expires.UTC().Format(time.RFC3339), now.Add(usable).Format(time.RFC3339))
	}
	var signed string
	if role == Viewer {
		signed, err = t.Presign(ctx, creds, now, clientID)
	} else {
		signed, err = t.Presign(ctx, creds, now)
	}
	if err != nil {
		return SignedURL{}, fmt.Errorf("kvs: %w", err)
	}
	return SignedURL{URL: signed, Role: role, ChannelARN: channelARN, ClientID: clientID, SignedAt: now, ExpiresAt: now.Add(usable)}, nil
}

// template returns the sigv4 template for a channel, endpoint and role,
// with the client id open for a viewer: from the cache, or checked and made
// (and kept unless p traces).
func (p *Presigner) template(endpoint, channelARN string, role Role, expires time.Duration) (*sigv4.Template, error) {
	key := templateKey{endpoint: endpoint, arn: channelARN, region: p.Region, role: role, expires: expires}
	c := p.templates()
	if p.Trace == nil {
		if t := c.get(key); t != nil {
			return t, nil
		}
	}
	u, err := ParseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	arn, err := ParseChannelARN(channelARN)
	if err != nil {
		return nil, err
	}
	region := p.Region
	if region == "" {
		region = arn.Region
	} else if region != arn.Region {
		return nil, fieldError("region", region, fmt.Sprintf("does not match the channel ARN's region %q", arn.Region))
	}
	var open []string
	switch role {
	case Master:
	case Viewer:
		open = []string{ParamClientID}
	default:
		return nil, fieldError("role", string(role), "must be MASTER or VIEWER")
	}
	if expires < time.Second || expires > MaxExpires || expires%time.Second != 0 {
		return nil, fieldError("expires", expires.String(), fmt.Sprintf("must be whole seconds from 1s to %v", MaxExpires))
	}
	s := c.signer(region)
	if p.Trace != nil {
		s = &sigv4.Signer{Service: Service, Region: region, Trace: p.Trace}
	}
	t, err := s.NewTemplate(&sigv4.PresignRequest{
		Scheme:  u.Scheme,
		Host:    u.Host,
		Path:    u.Path,
		Query:   []sigv4.Param{{Name: ParamChannelARN, Value: channelARN}},
		Expires: expires,
	}, open...)
	if err != nil {
		return nil, fmt.Errorf("kvs: %w", err)
	}
	if p.Trace == nil {
		c.put(key, t)
	}
	return t, nil
}

// templates returns p's cache, making it on first use.
func (p *Presigner) templates() *templateCache {
	if c := p.cache.Load(); c != nil {
		return c
	}
	p.cache.CompareAndSwap(nil, newTemplateCache(templateCacheSize))
	return p.cache.Load()
}

// templateKey is what a signaling URL's template depends on.
type templateKey struct {
	endpoint, arn, region string
	role                  Role
	expires               time.Duration
}

type templateEntry struct {
	key templateKey
	t   *sigv4.Template
}

// templateCacheSize bounds a Presigner's templates.
const templateCacheSize = 1024

// templateCache remembers templates, so that signing one more URL for a
// channel skips checking and escaping the endpoint and ARN. A device signs
// for one channel and a vending service for a few, so the cache holds the
// most recent template apart, read without a lock, and clears itself when
// it reaches its size. It also keeps one Signer per region, whose key
// cache the region's templates share.
type templateCache struct {
	last    atomic.Pointer[templateEntry]
	mu      sync.Mutex
	m       map[templateKey]*templateEntry
	signers map[string]*sigv4.Signer
	max     int
}

func newTemplateCache(size int) *templateCache {
	return &templateCache{m: make(map[templateKey]*templateEntry), signers: make(map[string]*sigv4.Signer), max: size}
}

// signer returns the cache's Signer for a region.
func (c *templateCache) signer(region string) *sigv4.Signer {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.signers[region]
	if s == nil {
		s = &sigv4.Signer{Service: Service, Region: strings.Clone(region)}
		c.signers[s.Region] = s
	}
	return s
}

func (c *templateCache) get(k templateKey) *sigv4.Template {
	if e := c.last.Load(); e != nil && e.key == k {
		return e.t
	}
	c.mu.Lock()
	e := c.m[k]
	c.mu.Unlock()
	if e == nil {
		return nil
	}
	c.last.Store(e)
	return e.t
}

// put caches t under k, keeping its own copies of k's strings: the
// caller's may be slices of something much larger.
func (c *templateCache) put(k templateKey, t *sigv4.Template) {
	k.endpoint, k.arn, k.region = strings.Clone(k.endpoint), strings.Clone(k.arn), strings.Clone(k.region)
	e := &templateEntry{k, t}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
		clear(c.signers)
	}
	c.m[k] = e
	c.mu.Unlock()
	c.last.Store(e)
}

// Endpoint is a parsed signaling endpoint.
type Endpoint struct {
	Scheme string // wss, or ws for a local emulator
	Host   string // host with an optional port
	Path   string // escaped path; "" or "/..."
}

// ParseEndpoint checks a signaling endpoint: wss:// (or ws:// for local
// use), a host, an optional path, and no query, fragment or user info. It is
// written by hand, rather than on net/url, to keep signing allocation-free.
func ParseEndpoint(endpoint string) (Endpoint, error) {
	fail := func(rule string) (Endpoint, error) {
		// The query of a signed URL given by mistake holds its signature.
		shown, _, _ := strings.Cut(endpoint, "?")
		return Endpoint{}, fieldError("endpoint", shown, rule)
	}
	if endpoint == "" {
		return fail("give the WSS endpoint from GetSignalingChannelEndpoint")
	}
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok || scheme != "wss" && scheme != "ws" {
		return fail("scheme must be wss (or ws for a local emulator)")
	}
	if strings.ContainsAny(rest, "?#") {
		return fail("must have no query or fragment: the signer adds the parameters")
	}
	if strings.IndexByte(rest, '@') >= 0 {
		return fail("must have no user info")
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if host == "" {
		return fail("has no host")
	}
	if !validHost(host) {
		return fail("host must be a DNS name or IP address with an optional port")
	}
	if !validPath(path) {
		return fail("path must be escaped (RFC 3986) and have no empty, . or .. segments")
	}
	return Endpoint{Scheme: scheme, Host: host, Path: path}, nil
}

// validPath accepts an escaped path without empty, "." or ".." segments,
// which servers and signers normalise differently.
func validPath(p string) bool {
	if p == "" {
		return true
	}
	rest := p[1:]
	for rest != "" {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case c == '%':
				if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
					return false
				}
				i += 2
			case c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0:
				return false
			}
		}
		if !more {
			break
		}
		rest = tail
	}
	return true
}

func isHex(c byte) bool { return charClass[c]&cHex != 0 }

// validHost accepts a DNS name, an IPv4 address or a bracketed IPv6
// address, each with an optional numeric port.
func validHost(h string) bool {
	name, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		name, port = h[1:end], h[end+1:]
		if !charsIn(name, cHex|cColon|cDot) || name == "" {
			return false
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		name, port = h[:i], h[i:]
		if name == "" || !charsIn(name, cHost) {
			return false
		}
	} else if !charsIn(name, cHost) {
		return false
	}
	if port != "" {
		p := port[1:]
		n, err := strconv.Atoi(p)
		if port[0] != ':' || !charsIn(p, cDigit) || err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return true
}
