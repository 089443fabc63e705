package sigv4_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

func TestRedact(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	cases := []struct{ name, in, want string }{
		{"signed url",
			"wss://h/?X-Amz-ChannelARN=arn%3Aa&X-Amz-Credential=AKID%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Security-Token=IQo%2Babc%3D&X-Amz-Signature=0123abcd",
			"wss://h/?X-Amz-ChannelARN=arn%3Aa&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"},
		{"lower case in an error", `Get "http://127.0.0.1:1/?x-amz-signature=ab": dial tcp`, `Get "http://127.0.0.1:1/?x-amz-signature=REDACTED": dial tcp`},
		{"encoded names", "wss://h/?X-Amz-%53ignature=abc&X-Amz-Security-T%6Fken=tok&X-Amz-%43redential=AKID", "wss://h/?X-Amz-%53ignature=REDACTED&X-Amz-Security-T%6Fken=REDACTED&X-Amz-%43redential=REDACTED"},
		{"url inside a parameter", "https://a/?next=wss%3A%2F%2Fh%2F%3FX-Amz-Signature%3Dabc%26X-Amz-Date%3D1&b=2", "https://a/?next=wss%3A%2F%2Fh%2F%3FX-Amz-Signature%3DREDACTED%26X-Amz-Date%3D1&b=2"},
		{"authorization header",
			"AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig,
			"AWS4-HMAC-SHA256 Credential=REDACTED, SignedHeaders=host;x-amz-date, Signature=REDACTED"},
		{"canonical request header line", "host:example.com\nx-amz-security-token:IQoJb3JpZ2luX2VjE==\nx-amz-date:20261123T100000Z",
			"host:example.com\nx-amz-security-token:REDACTED\nx-amz-date:20261123T100000Z"},
		{"header line with spaces", "  X-Amz-Security-Token: IQo+/= tail\r\nNext: 1", "  X-Amz-Security-Token: REDACTED\r\nNext: 1"},
		{"printed http.Header", "map[Authorization:[AWS4-HMAC-SHA256 Credential=A/1/r/s/aws4_request, SignedHeaders=host, Signature=" + sig + "] X-Amz-Security-Token:[IQo+/=]]",
			"map[Authorization:[AWS4-HMAC-SHA256 Credential=REDACTED, SignedHeaders=host, Signature=REDACTED] X-Amz-Security-Token:[REDACTED]]"},
		{"printed url.Values", fmt.Sprint(url.Values{"X-Amz-Credential": {"AKID/20261123/us-west-2/kinesisvideo/aws4_request"}, "X-Amz-Signature": {sig}, "X-Amz-Date": {"20261123T100000Z"}}),
			"map[X-Amz-Credential:[REDACTED] X-Amz-Date:[20261123T100000Z] X-Amz-Signature:[REDACTED]]"},
		{"json array", `{"X-Amz-Security-Token":["IQo+/="],"X-Amz-Signature":["` + sig + `"]}`, `{"X-Amz-Security-Token":["REDACTED"],"X-Amz-Signature":["REDACTED"]}`},
		{"json string", `{"X-Amz-Security-Token": "IQo+/=", "x-amz-credential" : "AKID/1/r/s/aws4_request"}`, `{"X-Amz-Security-Token": "REDACTED", "x-amz-credential" : "REDACTED"}`},
		{"url escaped twice", "https://a/?next=https%3A%2F%2Fb%2F%3Fu%3Dwss%253A%252F%252Fh%252F%253FX-Amz-Signature%253D" + sig + "%2526X-Amz-Date%253D1&c=1",
			"https://a/?next=https%3A%2F%2Fb%2F%3Fu%3Dwss%253A%252F%252Fh%252F%253FX-Amz-Signature%253DREDACTED%2526X-Amz-Date%253D1&c=1"},
		{"escaped url with an encoded name", "u=https%3A%2F%2Fh%2F%3FX-Amz-%2553ignature%3D" + sig, "u=https%3A%2F%2Fh%2F%3FX-Amz-%2553ignature%3DREDACTED"},
		{"colon", "X-Amz-Signature: " + sig, "X-Amz-Signature: REDACTED"},
		{"colon in text", "got X-Amz-Credential:AKID/1/r/s/aws4_request, X-Amz-Signature: " + sig + " back", "got X-Amz-Credential:REDACTED, X-Amz-Signature: REDACTED back"},
		{"spaced equals", "X-Amz-Signature = " + sig + "; X-Amz-Security-Token  =IQo+/=", "X-Amz-Signature = REDACTED; X-Amz-Security-Token  =REDACTED"},
		{"authorization header line", "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261123/us-east-1/kinesisvideo/aws4_request, SignedHeaders=host, Signature=" + sig,
			"Authorization: AWS4-HMAC-SHA256 Credential=REDACTED, SignedHeaders=host, Signature=REDACTED"},
		{"bare names take only =", "Signature: does not match; Credential: none", "Signature: does not match; Credential: none"},
		{"json similar names kept", `{"X-Amz-Signatures":"1","My-X-Amz-Signature":"2","X-Amz-Date":"3"}`, `{"X-Amz-Signatures":"1","My-X-Amz-Signature":"2","X-Amz-Date":"3"}`},
		{"quoted name in an error kept", `sigv4: query parameter "X-Amz-Signature": is set by the signer`, `sigv4: query parameter "X-Amz-Signature": is set by the signer`},
		{"url after a quoted name", `parameter "X-Amz-Signature": wss://h/?X-Amz-Signature=abc`, `parameter "X-Amz-Signature": wss://h/?X-Amz-Signature=REDACTED`},
		{"other colons kept", "host:example.com:443 x-amz-date:20261123T100000Z", "host:example.com:443 x-amz-date:20261123T100000Z"},
		{"token header after text", "sent X-Amz-Security-Token: IQo+/= and more", "sent X-Amz-Security-Token: REDACTED and more"},
		{"signed header list kept", "SignedHeaders=host;x-amz-security-token;x-amz-date", "SignedHeaders=host;x-amz-security-token;x-amz-date"},
		{"parenthesis after a value", "(signed: wss://h/?X-Amz-Signature=0123abcd)", "(signed: wss://h/?X-Amz-Signature=REDACTED)"},
		{"fragment", "wss://host/?X-Amz-Signature=abc#frag", "wss://host/?X-Amz-Signature=REDACTED#frag"},
		{"user info", "wss://user:pass@host/path?a=b", "wss://REDACTED@host/path?a=b"},
		{"user info without path", "see https://u:p@h.example.com.", "see https://REDACTED@h.example.com."},
		{"two urls", "a ws://x:y@h/?X-Amz-Signature=1 b ws://h2/?x-amz-security-token=2&c=3", "a ws://REDACTED@h/?X-Amz-Signature=REDACTED b ws://h2/?x-amz-security-token=REDACTED&c=3"},
		{"empty value kept", "wss://h/?X-Amz-Signature=&a=1", "wss://h/?X-Amz-Signature=&a=1"},
		{"other parameters kept", "wss://h/?X-Amz-Date=20261123T100000Z&X-Amz-SignedHeaders=host&X-Amz-ClientId=v1", "wss://h/?X-Amz-Date=20261123T100000Z&X-Amz-SignedHeaders=host&X-Amz-ClientId=v1"},
		{"similar names kept", "wss://h/?My-X-Amz-Signature=1&X-Amz-Signatures=2", "wss://h/?My-X-Amz-Signature=1&X-Amz-Signatures=2"},
		{"nothing secret", "nothing secret here", "nothing secret here"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		if got := sigv4.Redact(c.in); got != c.want {
			t.Errorf("%s: Redact(%q)\n = %q\nwant %q", c.name, c.in, got, c.want)
		}
	}
}

// TestRedactLinear: Redact looks back from each "=", ":" or escaped "=" over
// at most the longest secret name in its most escaped spelling, and copies
// nothing while it decodes one, so text made of separators costs it work and
// memory in proportion to its length. The bound is on bytes allocated, which
// the old quadratic walk-back exceeded a thousandfold; time is left to
// BenchmarkRedact.
func TestRedactLinear(t *testing.T) {
	const n = 30 << 10
	for _, unit := range []string{"%3D", "%253D", "=", ":", "a%3D", " =", "X-Amz-Signature%3D", `"X-Amz-Signature":`} {
		in := strings.Repeat(unit, n/len(unit))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out := sigv4.Redact(in)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(in))+64<<10 {
			t.Errorf("Redact(%q × %d) allocated %d bytes for %d bytes in, %d out", unit, n/len(unit), alloc, len(in), len(out))
		}
	}
}

// BenchmarkRedact: time per byte stays flat from 30 KB to 120 KB of
// separators, and a signed URL costs a few hundred nanoseconds.
func BenchmarkRedact(b *testing.B) {
	url := "wss://h/?X-Amz-ChannelARN=arn%3Aa&X-Amz-Credential=AKID%2F20261123%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Security-Token=IQo%2Babc%3D&X-Amz-Signature=" + strings.Repeat("ab", 32)
	for _, c := range []struct{ name, in string }{
		{"url", url},
		{"escaped=30KB", strings.Repeat("%3D", 10<<10)},
		{"escaped=120KB", strings.Repeat("%3D", 40<<10)},
		{"colon120KB", strings.Repeat(`"X-Amz-Signature":`, 120<<10/18)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.in)))
			for b.Loop() {
				sigv4.Redact(c.in)
			}
		})
	}
}

// TestVerifyEncodedNames: a server decodes parameter names once before it
// compares them, so a presigned URL whose X-Amz-Signature and
// X-Amz-Security-Token names are percent-encoded verifies as the plain one
// does, and Redact hides the values of both spellings.
func TestVerifyEncodedNames(t *testing.T) {
	s := &sigv4.Signer{Service: "kinesisvideo", Region: "us-west-2", Clock: func() time.Time { return t0 }}
	u, err := s.Presign(context.Background(), temp, &sigv4.PresignRequest{Scheme: "wss", Host: "h.example.com", Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	encoded := strings.NewReplacer("X-Amz-Signature=", "X-Amz-%53ignature=", "X-Amz-Security-Token=", "X-Amz-Security-T%6Fken=").Replace(u)
	if encoded == u {
		t.Fatal("nothing encoded")
	}
	for _, url := range []string{u, encoded} {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if _, err := verifier(t0).VerifyPresigned(context.Background(), req); err != nil {
			t.Errorf("VerifyPresigned(%s): %v", url, err)
		}
		red := sigv4.Redact(url)
		_, query, _ := strings.Cut(red, "?")
		q, err := sigv4.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range q {
			if secretName(p.Name) && p.Value != sigv4.Redacted {
				t.Errorf("Redact(%s) = %s: %s is left", url, red, p.Name)
			}
		}
	}
}

func secretName(name string) bool {
	for _, s := range []string{sigv4.ParamSignature, sigv4.ParamSecurityToken, sigv4.ParamCredential} {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

// FuzzRedact: Redact never panics, and whatever text surrounds a query,
// no parameter whose decoded name is a secret one keeps its value, nor an
// X-Amz-Security-Token header.
func FuzzRedact(f *testing.F) {
	f.Add("see (", "X-Amz-Signature", "0123abcd", "a=1&b=2", ") done")
	f.Add("wss://u:p@h/", "x-amz-%53ignature", "tok+/=", "", "")
	f.Add("Get \"", "X-Amz-Security-T%6fken", "IQoJb3JpZ2lu", "X-Amz-Date=1", "\": EOF")
	f.Fuzz(func(t *testing.T, before, name, secret, others, after string) {
		out := sigv4.Redact(before + "?" + name + "=" + escapeValue(secret) + "&" + others + " " + after)
		esc := escapeValue(secret)
		if len(secret) >= 4 && !strings.Contains(before+after+sigv4.Redacted, esc) {
			if h := sigv4.Redact(before + " X-Amz-Security-Token: " + esc + " " + after); strings.Contains(h, esc) {
				t.Fatalf("Redact left the token header's value in %q", h)
			}
		}
		decoded, err := sigv4.ParseQuery(name + "=x")
		if err != nil || len(decoded) != 1 || !secretName(decoded[0].Name) || len(secret) < 4 {
			return
		}
		if strings.Contains(before+name+others+after+sigv4.Redacted, esc) {
			return
		}
		if strings.Contains(out, esc) {
			t.Fatalf("Redact left the value of %q in %q", name, out)
		}
		if name != decoded[0].Name {
			return
		}
		// The same name in a header, JSON, a printed map and a log line.
		for _, spelling := range []string{name + ": " + esc, `{"` + name + `": "` + esc + `"}`, "map[" + name + ":[" + esc + "]]", name + " = " + esc} {
			if out := sigv4.Redact(before + " " + spelling + " " + after); strings.Contains(out, esc) {
				t.Fatalf("Redact left the value of %q in %q", name, out)
			}
		}
	})
}

// escapeValue encodes s as a signer writes a query value.
func escapeValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + string(hex[c>>4]) + string(hex[c&15]))
	}
	return b.String()
}
