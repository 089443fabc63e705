package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestPrintable(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text: 403 AccessDeniedException", "plain text: 403 AccessDeniedException"},
		{"tab\tstays", "tab\tstays"},
		{"title \x1b]0;pwned\x07 set", `title \x1b]0;pwned\a set`},
		{"clear \x1b[2J screen", `clear \x1b[2J screen`},
		{"forged\r\nkvssign: connected as MASTER", `forged\r\nkvssign: connected as MASTER`},
		{"C1 \u009b2J and DEL \x7f", `C1 \u009b2J and DEL \x7f`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff byte", `bad \xff byte`},
		{"a real \uFFFD stays", "a real \uFFFD stays"},
		{"unicode: été ✓", "unicode: été ✓"},
	}
	for _, tc := range cases {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	if got, want := printableLines("line 1 \x1b[2J\n  line 2\r"), "line 1 \\x1b[2J\n  line 2\\r"; got != want {
		t.Errorf("printableLines = %q; want %q", got, want)
	}
}

func TestPrintableJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a":"plain","b":"été ✓"}` + "\n", `{"a":"plain","b":"été ✓"}` + "\n"},
		{"{\n  \"sdp\": \"a\u009b2J\u007fb\u202ec\"\n}", "{\n  \"sdp\": \"a\\u009b2J\\u007fb\\u202ec\"\n}"},
		{"[\"\xff\", \"\U000e0001\"]", `["\ufffd", "\udb40\udc01"]`},
	}
	for _, tc := range cases {
		got := string(printableJSON([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("printableJSON(%q) = %q; want %q", tc.in, got, tc.want)
		}
		var a, b any
		if json.Unmarshal([]byte(tc.in), &a) == nil && (json.Unmarshal([]byte(got), &b) != nil || !reflect.DeepEqual(a, b)) {
			t.Errorf("printableJSON(%q) = %q means something else", tc.in, got)
		}
	}
}

// FuzzPrintable: the result never holds a control character but tab.
func FuzzPrintable(f *testing.F) {
	f.Add("\x1b]0;x\x07\r\n\u009b\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range printable(s) {
			if r != '\t' && (r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0) {
				t.Fatalf("printable(%q) holds %U", s, r)
			}
		}
	})
}
