package kvs

import (
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

func TestTemplateCache(t *testing.T) {
	c := templateCache{m: make(map[templateKey]*templateEntry), max: 2}
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

// TestTemplateKeyCaches: presigners with different key caches get
// different templates (a template signs with the cache it was made with).
func TestTemplateKeyCaches(t *testing.T) {
	creds := sigv4.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	const ep, arn = "wss://a.example.com", "arn:aws:kinesisvideo:us-west-2:123456789012:channel/keys/1"
	a, b := sigv4.NewKeyCache(1), sigv4.NewKeyCache(1)
	for _, k := range []*sigv4.KeyCache{a, b, nil} {
		p := &Presigner{Credentials: creds, Keys: k}
		if _, err := p.Presign(t.Context(), ep, arn, Master, ""); err != nil {
			t.Fatal(err)
		}
	}
	key := func(k *sigv4.KeyCache) templateKey {
		return templateKey{endpoint: ep, arn: arn, role: Master, expires: DefaultExpires, keys: k}
	}
	ta, tb, tn := templates.get(key(a)), templates.get(key(b)), templates.get(key(nil))
	if ta == nil || tb == nil || tn == nil || ta == tb || ta == tn || tb == tn {
		t.Fatalf("templates for caches a, b and none: %p %p %p; want three", ta, tb, tn)
	}
}
