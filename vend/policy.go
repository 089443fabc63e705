// Authorisation: which caller may connect to which channel in which role,
// and which viewer client ids a caller may use.

package vend

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kvssign/kvssign/kvs"
)

// policy is the compiled rules.
type policy struct {
	rules []rule
}

type rule struct {
	principals, groups, channels []string
	master, viewer               bool
	create, anyClientID          bool
}

func newPolicy(rs []Rule) *policy {
	p := &policy{rules: make([]rule, 0, len(rs))}
	for _, r := range rs {
		cr := rule{principals: r.Principals, groups: r.Groups, channels: r.Channels, create: r.CreateChannel, anyClientID: r.AnyClientID}
		for _, s := range r.Roles {
			switch role, _ := kvs.ParseRole(s); role {
			case kvs.Master:
				cr.master = true
			case kvs.Viewer:
				cr.viewer = true
			}
		}
		p.rules = append(p.rules, cr)
	}
	return p
}

// grant is what the rules allow one caller on one channel in one role.
type grant struct {
	allowed     bool
	create      bool
	anyClientID bool
}

// decide returns what the rules grant p on channel in role: the union of
// every rule that matches.
func (pol *policy) decide(p *principal, channel string, role kvs.Role) grant {
	var g grant
	for i := range pol.rules {
		r := &pol.rules[i]
		if (role == kvs.Master && !r.master) || (role == kvs.Viewer && !r.viewer) {
			continue
		}
		if !r.matchesPrincipal(p) || !matchAny(r.channels, channel) {
			continue
		}
		g.allowed = true
		g.create = g.create || r.create
		g.anyClientID = g.anyClientID || r.anyClientID
	}
	return g
}

func (r *rule) matchesPrincipal(p *principal) bool {
	if len(r.principals) > 0 && !matchAny(r.principals, p.id) {
		return false
	}
	if len(r.groups) > 0 {
		for _, g := range r.groups {
			for _, h := range p.groups {
				if g == h {
					return true
				}
			}
		}
		return false
	}
	return true
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob reports whether s matches pattern, where * matches any run of
// characters (none included) and ? matches one. It runs in
// O(len(pattern)·len(s)) at worst, without recursion.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// maxSuffix bounds the part of a bound client id the caller chooses.
const maxSuffix = 64

// viewerClientID returns the client id a viewer connects with. asked is
// what the caller asked for ("" for none). Unless the caller may choose any
// id, the id is bound to the caller: its base id, or the base id, a dot and
// a suffix of a-z A-Z 0-9 _ -. With none asked, the base id and a random
// suffix are used, so two sessions of one caller do not replace each other.
func viewerClientID(p *principal, asked string, free bool) (string, error) {
	if free {
		if asked == "" {
			return kvs.NewClientID(), nil
		}
		if err := kvs.ValidateClientID(asked); err != nil {
			return "", err
		}
		return asked, nil
	}
	if asked == "" {
		var b [6]byte
		rand.Read(b[:])
		return p.clientBase + "." + hex.EncodeToString(b[:]), nil
	}
	if asked == p.clientBase {
		return asked, nil
	}
	suffix, ok := strings.CutPrefix(asked, p.clientBase+".")
	if !ok {
		return "", &clientIDError{fmt.Sprintf("clientId %q: you may use only %q or %q followed by a suffix: a viewer's client id is bound to the caller", clip(asked), p.clientBase, p.clientBase+".")}
	}
	if !validName(suffix, maxSuffix) {
		return "", fmt.Errorf("clientId %q: the suffix after %q must be 1 to %d characters of a-z A-Z 0-9 _ -", clip(asked), p.clientBase+".", maxSuffix)
	}
	return asked, kvs.ValidateClientID(asked)
}

// clientIDError is a well-formed client id the caller may not use.
type clientIDError struct{ msg string }

func (e *clientIDError) Error() string { return e.msg }

// clip shortens caller input before it goes into a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
