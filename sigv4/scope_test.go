package sigv4

import (
	"errors"
	"strings"
	"testing"
)

// TestParseCredentialLimits: the region and service of a credential scope
// key the verifier's cache before the signature is checked, so their length
// is capped; a longer one is refused with an error naming the field.
func TestParseCredentialLimits(t *testing.T) {
	long := strings.Repeat("a", maxScopeName+1)
	fits := strings.Repeat("a", maxScopeName)
	cases := []struct {
		name, in string
		text     string // "" when the credential parses
	}{
		{"ordinary", "AKID/20261123/us-west-2/kinesisvideo/aws4_request", ""},
		{"longest region and service", "AKID/20261123/" + fits + "/" + fits + "/aws4_request", ""},
		{"long region", "AKID/20261123/" + long + "/kinesisvideo/aws4_request", "region"},
		{"long service", "AKID/20261123/us-west-2/" + long + "/aws4_request", "service"},
		{"huge region", "AKID/20261123/" + strings.Repeat("r", 60<<10) + "/s/aws4_request", "region"},
	}
	for _, c := range cases {
		_, err := parseCredential(c.in)
		if c.text == "" {
			if err != nil {
				t.Errorf("%s: parseCredential: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), "64") {
			t.Errorf("%s: parseCredential = %v; want ErrMalformed naming the %s and the limit", c.name, err, c.text)
			continue
		}
		if len(err.Error()) > 200 {
			t.Errorf("%s: error is %d bytes long; it must not echo the field", c.name, len(err.Error()))
		}
	}
}

// FuzzParseCredential: a credential that parses has every part, a date of
// eight digits, a region and service within the cap, and reads back as
// given.
func FuzzParseCredential(f *testing.F) {
	f.Add("AKID/20261123/us-west-2/kinesisvideo/aws4_request")
	f.Add("AKID/20261123/" + strings.Repeat("r", 65) + "/s/aws4_request")
	f.Add("//////")
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := parseCredential(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseCredential(%q) = %v; want ErrMalformed", s, err)
			}
			return
		}
		if sc.accessKeyID == "" || len(sc.date) != 8 || strings.Trim(sc.date, "0123456789") != "" ||
			sc.region == "" || len(sc.region) > maxScopeName || sc.service == "" || len(sc.service) > maxScopeName {
			t.Fatalf("parseCredential(%q) = %+v", s, sc)
		}
		if back := strings.Join([]string{sc.accessKeyID, sc.date, sc.region, sc.service, "aws4_request"}, "/"); back != s {
			t.Fatalf("parseCredential(%q) reads back as %q", s, back)
		}
	})
}
