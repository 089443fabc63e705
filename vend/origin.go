// Browser origins, for CORS: parsed as scheme://host[:port] and compared
// whole, never as strings that merely end alike.

package vend

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// origin is a parsed http or https origin, as browsers serialize it: a
// lower-case scheme and host, and a port only when it is not the
// scheme's default.
type origin struct{ scheme, host, port string }

func (o origin) String() string {
	if o.port == "" {
		return o.scheme + "://" + o.host
	}
	return o.scheme + "://" + o.host + ":" + o.port
}

// parseOrigin parses an Origin header or a configured origin.
func parseOrigin(s string) (origin, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return origin{}, errors.New("must be http:// or https:// and a host")
	}
	o := origin{scheme: scheme, host: rest}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		o.host, o.port = rest[:i], rest[i+1:]
		n, err := strconv.Atoi(o.port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != o.port {
			return origin{}, errors.New("the port must be a number from 1 to 65535")
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			return origin{}, errors.New("the port must be left out when it is the scheme's default")
		}
	}
	if err := checkHost(o.host); err != nil {
		return origin{}, err
	}
	return o, nil
}

// checkHost accepts a lower-case DNS name or a bracketed IPv6 address, as
// in an origin; anything else (a path, a query, user info, upper case) is
// refused.
func checkHost(h string) error {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" || "["+a.String()+"]" != h {
			return errors.New("the host must be a DNS name or a canonical [IPv6] address")
		}
		return nil
	}
	if h == "" || len(h) > 253 {
		return errors.New("the host must be 1 to 253 characters")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("the host must be dot-separated labels of 1 to 63 characters, not starting or ending with -")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("the host must be lower-case a-z, 0-9, - and dots, with no path, query or user")
			}
		}
	}
	return nil
}

// corsPolicy decides which browser origins may call.
type corsPolicy struct {
	exact    map[origin]bool
	wildcard []origin // host is the suffix with its leading dot: https://*.example.com
	maxAge   string
}

// newCORS compiles allowed origins that passed validateOrigin.
func newCORS(c CORS) corsPolicy {
	p := corsPolicy{exact: make(map[origin]bool), maxAge: strconv.Itoa(int(orDuration(c.MaxAge, 10*time.Minute) / time.Second))}
	for _, s := range c.AllowedOrigins {
		wild := strings.Contains(s, "://*.")
		o, err := parseOrigin(strings.Replace(s, "://*.", "://", 1))
		if err != nil {
			continue
		}
		if wild {
			o.host = "." + o.host
			p.wildcard = append(p.wildcard, o)
		} else {
			p.exact[o] = true
		}
	}
	return p
}

// validateOrigin checks a configured origin: scheme://host[:port], with
// "*." leading the host to allow its subdomains.
func validateOrigin(s string) error {
	_, err := parseOrigin(strings.Replace(s, "://*.", "://", 1))
	return err
}

// allowed reports whether origin may call: it is listed, or it is the
// server's own origin (a page served by the server itself, over http or
// https, the scheme being unknown behind a load balancer).
func (c *corsPolicy) allowed(s, host string) bool {
	o, err := parseOrigin(s)
	if err != nil {
		return false
	}
	if c.exact[o] {
		return true
	}
	self := o.host
	if o.port != "" {
		self += ":" + o.port
	}
	if host != "" && self == host {
		return true
	}
	for _, w := range c.wildcard {
		if w.scheme == o.scheme && w.port == o.port && strings.HasSuffix(o.host, w.host) && len(o.host) > len(w.host) {
			return true
		}
	}
	return false
}
