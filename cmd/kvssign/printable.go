// Text from outside kvssign (a service's refusal or error, a peer's frame, a
// URL or a channel name given on the command line) is shown through
// printable, so that it cannot drive the terminal: an escape sequence could
// retitle the window, clear the screen or hide what came before, and a
// forged line break could print a line that looks like kvssign's own.

package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kvssign/kvssign/diagnose"
)

// printable returns s with every character that is not printable (control
// characters but tab, DEL, C1 controls, bidirectional overrides, invalid
// UTF-8) replaced by its Go escape, such as \x1b, \r, \n or \u202e.
func printable(s string) string {
	i := strings.IndexFunc(s, needsEscape)
	if i < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case needsEscape(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool { return r != '\t' && !strconv.IsPrint(r) }

// printableLines is printable for text of several lines of kvssign's own
// making: each line is made printable, and the line breaks stay.
func printableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return strings.Join(lines, "\n")
}

// printableDiagnosis is d with its texts made printable: they may quote the
// service's message.
func printableDiagnosis(d diagnose.Diagnosis) diagnose.Diagnosis {
	d.Explanation, d.Fix = printable(d.Explanation), printable(d.Fix)
	return d
}

// printableJSON escapes, in JSON text, the characters that printable escapes
// and JSON leaves raw (DEL, C1 controls, bidirectional overrides, invalid
// UTF-8): they can only be inside strings, where \uXXXX means the same
// character.
func printableJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, jsonNeedsEscape) && utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case jsonNeedsEscape(r) && r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		case jsonNeedsEscape(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// jsonNeedsEscape leaves out the control characters JSON escapes itself
// and the white space between its tokens.
func jsonNeedsEscape(r rune) bool { return r >= 0x7f && needsEscape(r) }
