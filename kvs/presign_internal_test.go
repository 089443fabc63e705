package kvs

import (
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

func TestTemplateCache(t *testing.T) {
	c := templateCache{m: make(map[templateKey]*sigv4.Template), max: 2}
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
