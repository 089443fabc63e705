package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestEscape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"AZaz09-_.~", "AZaz09-_.~"},
		{"a b", "a%20b"},
		{"a+b=c/d", "a%2Bb%3Dc%2Fd"},
		{"arn:aws:kinesisvideo", "arn%3Aaws%3Akinesisvideo"},
		{"*!'()", "%2A%21%27%28%29"},
		{"ሴ", "%E1%88%B4"},
	}
	for _, c := range cases {
		if got := escape(c.in); got != c.want {
			t.Errorf("escape(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

// FuzzParseQuery checks that parsing never panics and that escaping what it
// decoded and parsing again gives the same parameters.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "x&y=", "t=abc%3D%3D", "s=a+b", "%E1%88%B4=bar", "a=%zz", "=&=&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ps, err := ParseQuery(raw)
		if err != nil {
			return
		}
		var parts []string
		for _, p := range ps {
			parts = append(parts, escape(p.Name)+"="+escape(p.Value))
		}
		again, err := ParseQuery(strings.Join(parts, "&"))
		if err != nil {
			t.Fatalf("re-parsing escaped output: %v", err)
		}
		if !reflect.DeepEqual(again, ps) {
			t.Fatalf("round trip changed %q: %v became %v", raw, ps, again)
		}
	})
}

// FuzzParseAuthorization checks that any header either parses into three
// non-empty parts or is refused with a *Error.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add("AWS4-HMAC-SHA256 Credential=,SignedHeaders=,Signature=")
	f.Add("Bearer abc")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAuthorization(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not a *Error", err)
			}
			return
		}
		if a.Credential == "" || a.SignedHeaders == "" || len(a.Signature) != 64 {
			t.Fatalf("accepted %q as %+v", s, a)
		}
	})
}

// TestDeriveKey checks the key AWS's documentation derives as its example.
func TestDeriveKey(t *testing.T) {
	got := deriveKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
	const want = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
	if hex.EncodeToString(got[:]) != want {
		t.Errorf("deriveKey = %x; want %s", got, want)
	}
}

// TestKeyCacheConcurrent looks keys up on many goroutines, more scopes than
// the most recent one; run with -race.
func TestKeyCacheConcurrent(t *testing.T) {
	var l lazyKeys
	want := map[string]*keyEntry{}
	dates := []string{"20261121", "20261122", "20261123"}
	for _, d := range dates {
		id := keyID{"secret", [8]byte([]byte(d)), "us-west-2", "kinesisvideo"}
		want[d] = newKeyEntry(id, deriveKey("secret", d, "us-west-2", "kinesisvideo"))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				d := dates[(g+i)%len(dates)]
				e := l.cache().entry("secret", [8]byte([]byte(d)), "us-west-2", "kinesisvideo")
				if e.id != want[d].id || string(e.inner) != string(want[d].inner) || string(e.outer) != string(want[d].outer) {
					t.Errorf("entry(%s) wrong", d)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestEscapedTokenPerKey: two credentials signed in turn each keep their
// escaped token, rather than evicting each other's.
func TestEscapedTokenPerKey(t *testing.T) {
	var l lazyKeys
	c := l.cache()
	date := [8]byte([]byte("20261123"))
	a := c.entry("secret-a", date, "us-west-2", "kinesisvideo")
	b := c.entry("secret-b", date, "us-west-2", "kinesisvideo")
	for range 2 {
		for _, x := range []struct {
			e     *keyEntry
			token string
		}{{a, "token+a"}, {b, "token/b"}} {
			if got, want := string(x.e.appendEscapedToken(nil, x.token)), escape(x.token); got != want {
				t.Errorf("appendEscapedToken(%q) = %q; want %q", x.token, got, want)
			}
		}
	}
	if ta, tb := a.token.Load(), b.token.Load(); ta == nil || tb == nil || ta[0] != "token+a" || tb[0] != "token/b" {
		t.Errorf("cached tokens %v and %v; want each its own", ta, tb)
	}
}

// The signature of a URL is an HMAC under the day's signing key. The
// benchmarks compare restoring the SHA-256 states saved after the key's
// pads (what signing does) with crypto/hmac, which hashes both pads anew
// and allocates on every signature.
var (
	benchAmzDate = []byte("20261123T100000Z")
	benchCRHash  = sha256.Sum256([]byte("canonical request"))
)

func BenchmarkSignatureSavedState(b *testing.B) {
	var l lazyKeys
	key := l.cache().entry("secret", [8]byte(benchAmzDate[:8]), "us-west-2", "kinesisvideo")
	b.ReportAllocs()
	for b.Loop() {
		h := hashers.Get().(*hasher)
		_ = h.signature(key, benchAmzDate, "us-west-2", "kinesisvideo", benchCRHash)
		hashers.Put(h)
	}
}

func BenchmarkSignatureHMAC(b *testing.B) {
	k := deriveKey("secret", string(benchAmzDate[:8]), "us-west-2", "kinesisvideo")
	var sts [256]byte
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, k[:])
		m.Write(appendStringToSign(sts[:0], benchAmzDate, "us-west-2", "kinesisvideo", benchCRHash))
		var sum [32]byte
		var out [64]byte
		encodeHex(out[:], m.Sum(sum[:0]))
	}
}

// TestSignatureMatchesHMAC: the saved states give crypto/hmac's result.
func TestSignatureMatchesHMAC(t *testing.T) {
	var l lazyKeys
	key := l.cache().entry("secret", [8]byte(benchAmzDate[:8]), "us-west-2", "kinesisvideo")
	h := hashers.Get().(*hasher)
	defer hashers.Put(h)
	got := h.signature(key, benchAmzDate, "us-west-2", "kinesisvideo", benchCRHash)
	k := deriveKey("secret", string(benchAmzDate[:8]), "us-west-2", "kinesisvideo")
	m := hmac.New(sha256.New, k[:])
	m.Write(appendStringToSign(nil, benchAmzDate, "us-west-2", "kinesisvideo", benchCRHash))
	if want := hex.EncodeToString(m.Sum(nil)); string(got[:]) != want {
		t.Errorf("signature %s; crypto/hmac gives %s", got, want)
	}
}
