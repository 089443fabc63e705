package vend

import (
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	cases := []struct {
		in, want string // want "" means an error
	}{
		{"https://app.example.com", "https://app.example.com"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://[::1]", "https://[::1]"},
		{"https://a-b.c", "https://a-b.c"},
		{"ftp://app.example.com", ""},
		{"null", ""},
		{"", ""},
		{"https://", ""},
		{"https://app.example.com/", ""},
		{"https://app.example.com?x", ""},
		{"https://app.example.com#x", ""},
		{"https://u@app.example.com", ""},
		{"https://App.example.com", ""},
		{"HTTPS://app.example.com", ""},
		{"https://app.example.com:443", ""},
		{"http://app.example.com:80", ""},
		{"https://app.example.com:0", ""},
		{"https://app.example.com:65536", ""},
		{"https://app.example.com:08080", ""},
		{"https://app.example.com:", ""},
		{"https://-a.example.com", ""},
		{"https://a..example.com", ""},
		{"https://.example.com", ""},
		{"https://a.example.com.", ""},
		{"https://[::1%eth0]", ""},
		{"https://[0:0::1]", ""},
		{"https://[127.0.0.1]", ""},
		{"https://a b", ""},
		{"https://" + strings.Repeat("a", 64) + ".com", ""},
	}
	for _, c := range cases {
		o, err := parseOrigin(c.in)
		got := ""
		if err == nil {
			got = o.String()
		}
		if got != c.want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestCORSAllowed(t *testing.T) {
	p := newCORS(CORS{AllowedOrigins: []string{"https://app.example.com", "https://*.example.org", "http://*.local.test:8080"}})
	cases := []struct {
		origin, host string
		want         bool
	}{
		{"https://app.example.com", "api.example.com", true},
		{"https://a.example.org", "", true},
		{"https://example.org", "", false},
		{"https://evil.com?.example.org", "", false},
		{"https://evilexample.org", "", false},
		{"http://a.example.org", "", false},
		{"https://a.example.org:8443", "", false},
		{"http://x.local.test:8080", "", true},
		{"http://x.local.test", "", false},
		{"https://api.example.com", "api.example.com", true},
		{"http://api.example.com", "api.example.com", true},
		{"ftp://api.example.com", "api.example.com", false},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"http://127.0.0.1:8081", "127.0.0.1:8080", false},
		{"http://127.0.0.1", "", false},
	}
	for _, c := range cases {
		if got := p.allowed(c.origin, c.host); got != c.want {
			t.Errorf("allowed(%q, host %q) = %v; want %v", c.origin, c.host, got, c.want)
		}
	}
}

// FuzzParseOrigin: no input panics, and what parses is in canonical form,
// with nothing after the host and port.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "http://127.0.0.1:8080", "http://[::1]:1", "https://evil.com?.example.org", "ftp://x", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOrigin(s)
		if err != nil {
			return
		}
		if o.String() != s {
			t.Fatalf("parseOrigin(%q) = %q; want the input back", s, o.String())
		}
		if strings.ContainsAny(o.host, "/?#@\\ ") || strings.ToLower(s) != s {
			t.Fatalf("parseOrigin(%q) accepted %q", s, o.host)
		}
	})
}
