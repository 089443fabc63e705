package vend

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"cam-*", "cam-1", true},
		{"cam-*", "cam-", true},
		{"cam-*", "cam", false},
		{"cam-?", "cam-1", true},
		{"cam-?", "cam-12", false},
		{"*-door", "front-door", true},
		{"*-door", "front-doors", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"token:camera*", "token:camera1", true},
		{"token:camera*", "jwt:camera1", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**", "x", true},
		{strings.Repeat("*a", 20), strings.Repeat("a", 60) + "b", false},
	}
	for _, c := range cases {
		if got := glob(c.pattern, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v; want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestPolicy(t *testing.T) {
	pol := newPolicy(baseConfig().Rules)
	camera := &principal{id: "token:camera1", clientBase: "token-camera1"}
	alice := &principal{id: "token:alice", groups: []string{"family"}, clientBase: "token-alice"}
	backend := &principal{id: "token:backend", clientBase: "token-backend"}
	cases := []struct {
		p       *principal
		channel string
		role    kvs.Role
		want    grant
	}{
		{camera, "cam-1", kvs.Master, grant{allowed: true, create: true}},
		{camera, "cam-1", kvs.Viewer, grant{}},
		{camera, "garage", kvs.Master, grant{}},
		{alice, "cam-1", kvs.Viewer, grant{allowed: true}},
		{alice, "cam-1", kvs.Master, grant{}},
		{backend, "anything", kvs.Viewer, grant{allowed: true, anyClientID: true}},
	}
	for _, c := range cases {
		if got := pol.decide(c.p, c.channel, c.role); got != c.want {
			t.Errorf("decide(%s, %s, %s) = %+v; want %+v", c.p.id, c.channel, c.role, got, c.want)
		}
	}
}

func TestViewerClientID(t *testing.T) {
	p := &principal{id: "token:alice", clientBase: "token-alice"}
	cases := []struct {
		asked     string
		free      bool
		want      string
		forbidden bool
		invalid   bool
	}{
		{asked: "token-alice", want: "token-alice"},
		{asked: "token-alice.phone", want: "token-alice.phone"},
		{asked: "token-alice.a_b-9", want: "token-alice.a_b-9"},
		{asked: "token-bob", forbidden: true},
		{asked: "token-alice2", forbidden: true},
		{asked: "token-alic", forbidden: true},
		{asked: "token-alice.", invalid: true},
		{asked: "token-alice.a.b", invalid: true},
		{asked: "token-alice." + strings.Repeat("x", maxSuffix+1), invalid: true},
		{asked: "anyone", free: true, want: "anyone"},
		{asked: "AWS_x", free: true, invalid: true},
	}
	for _, c := range cases {
		got, err := viewerClientID(p, c.asked, c.free)
		_, isForbidden := err.(*clientIDError)
		switch {
		case c.forbidden:
			if !isForbidden {
				t.Errorf("viewerClientID(%q) = %q, %v; want forbidden", c.asked, got, err)
			}
		case c.invalid:
			if err == nil || isForbidden {
				t.Errorf("viewerClientID(%q) = %q, %v; want invalid", c.asked, got, err)
			}
		case err != nil || got != c.want:
			t.Errorf("viewerClientID(%q) = %q, %v; want %q", c.asked, got, err, c.want)
		}
	}
	if got, err := viewerClientID(p, "", false); err != nil || !strings.HasPrefix(got, "token-alice.") {
		t.Errorf("viewerClientID(\"\") = %q, %v; want token-alice.RANDOM", got, err)
	}
	if got, err := viewerClientID(p, "", true); err != nil || kvs.ValidateClientID(got) != nil {
		t.Errorf("viewerClientID(\"\", free) = %q, %v; want a valid id", got, err)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := newLimiter[string](Rate{PerSecond: 2, Burst: 4}, 1, 1)
	for i := range 4 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Errorf("over the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Error("another key is limited too")
	}
	if ok, _ := l.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Error("refused after the wait")
	}
	if ok, _ := newLimiter[string](Rate{PerSecond: -1}, 1, 1).allow("a", now); !ok {
		t.Error("an unlimited limiter refused")
	}
	if l := newLimiter[string](Rate{}, 5, 10); l.burst != 10 || l.every != 5 {
		t.Errorf("defaults: %v/s burst %d; want 5/s burst 10", l.every, l.burst)
	}
	if l := newLimiter[string](Rate{PerSecond: 3}, 5, 10); l.burst != 6 {
		t.Errorf("burst defaults to %d; want twice the rate", l.burst)
	}
}

// TestLimiterBounded floods a limiter with distinct keys: its size stays
// bounded, and idle buckets (full again) are dropped first.
func TestLimiterBounded(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	l := newLimiter[netip.Addr](Rate{PerSecond: 1, Burst: 1}, 1, 1)
	for i := range 300000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.allow(a, now.Add(time.Duration(i)*time.Microsecond))
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].m)
	}
	if n > limiterShards*limiterPerShard {
		t.Errorf("%d buckets; want at most %d", n, limiterShards*limiterPerShard)
	}
}

func TestIPKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
	}
	for _, c := range cases {
		if got := ipKey(netip.MustParseAddr(c.in)).String(); got != c.want {
			t.Errorf("ipKey(%s) = %s; want %s", c.in, got, c.want)
		}
	}
}
