package kvs

import (
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

func TestTemplateCache(t *testing.T) {
	c := newTemplateCache(2)
	s := sigv4.Signer{Service: Service, Region: "us-west-2"}
	tmpl := func(host string) *sigv4.Template {
		t.Helper()
		x, err := s.NewTemplate(&sigv4.PresignRequest{Scheme: "wss", Host: host, Expires: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	key := func(ep string) templateKey {
		return templateKey{endpoint: ep, arn: "arn", role: Master, expires: time.Minute}
	}
	a, b, d := tmpl("a"), tmpl("b"), tmpl("d")

	if got := c.get(key("a")); got != nil {
		t.Fatalf("empty cache returned %p", got)
	}
	c.put(key("a"), a)
	c.put(key("b"), b)
	if c.get(key("a")) != a || c.get(key("b")) != b {
		t.Fatal("cache lost a template it has room for")
	}
	if got := c.get(templateKey{endpoint: "a", arn: "arn", role: Viewer, expires: time.Minute}); got != nil {
		t.Fatal("a master's template returned for a viewer")
	}
	c.put(key("d"), d) // full: starts again empty
	if c.get(key("d")) != d {
		t.Fatal("cache lost the newest template")
	}
	if got := c.get(key("a")); got != nil {
		t.Errorf("template survived the cache clearing itself")
	}
	if len(c.m) != 1 {
		t.Errorf("cache holds %d templates; want 1", len(c.m))
	}
}

// TestTemplatesPerPresigner: each Presigner keeps its own templates, and
// its templates for one region share one Signer, hence one key cache.
func TestTemplatesPerPresigner(t *testing.T) {
	creds := sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	const ep, arn = "wss://a.example.com", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/keys/1"
	a, b := &Presigner{Credentials: creds}, &Presigner{Credentials: creds}
	for _, p := range []*Presigner{a, b} {
		for _, role := range []Role{Master, Viewer} {
			id := ""
			if role == Viewer {
				id = "v"
			}
			if _, err := p.Presign(t.Context(), ep, arn, role, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	key := templateKey{endpoint: ep, arn: arn, role: Master, expires: DefaultExpires}
	ta, tb := a.cache.Load().get(key), b.cache.Load().get(key)
	if ta == nil || tb == nil || ta == tb {
		t.Fatalf("templates of presigners a and b: %p %p; want two", ta, tb)
	}
	if n := len(a.cache.Load().m); n != 2 {
		t.Errorf("presigner a keeps %d templates; want 2 (master and viewer)", n)
	}
	if s1, s2 := a.cache.Load().signer("us-west-2"), a.cache.Load().signer("us-west-2"); s1 != s2 {
		t.Errorf("two signers for one region")
	}
}
