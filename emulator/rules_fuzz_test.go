package emulator

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzSignedTime feeds checkSignedTime arbitrary X-Amz-Date and
// X-Amz-Expires values: it must not panic, and a refusal is always a 403
// in KVS's words.
func FuzzSignedTime(f *testing.F) {
	f.Add("20231107T044734Z", "300")
	f.Add("20231107T045805Z", "604800")
	f.Add("99991231T235959Z", "604801")
	f.Add("2023", "-1")
	f.Add("", "18446744073709551616")
	now := time.Date(2023, 11, 7, 4, 58, 5, 0, time.UTC)
	e, err := New(Config{Clock: func() time.Time { return now }, DisableTURN: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, date, expires string) {
		q := url.Values{"X-Amz-Date": {date}, "X-Amz-Expires": {expires}}
		r := httptest.NewRequest("GET", "/signaling/master/m-1?"+q.Encode(), nil)
		he, ok := e.checkSignedTime(r)
		if !ok && (he.status != 403 || he.code != "AccessDeniedException" || !strings.HasPrefix(he.msg, "Signature ")) {
			t.Errorf("date %q, expires %q: refused with %+v", date, expires, he)
		}
	})
}

// FuzzAdminRefusal feeds the admin guard arbitrary Host, Origin and
// Content-Type headers: it must not panic, and must refuse every Origin
// that is not the request's own.
func FuzzAdminRefusal(f *testing.F) {
	f.Add("127.0.0.1:4566", "http://127.0.0.1:4566", "application/json", "POST")
	f.Add("evil.example", "https://evil.example", "text/plain", "PUT")
	f.Add("[::1]:80", "null", "multipart/form-data; boundary=x", "DELETE")
	f.Add("localhost.", "", "text/plain;;;", "GET")
	e, err := New(Config{DisableTURN: true, Hostname: "kinesisvideo.us-west-2.amazonaws.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, origin, contentType, method string) {
		r := httptest.NewRequest("GET", "/_emulator/stats", nil)
		r.Method, r.Host = method, host
		r.Header.Set("Origin", origin)
		r.Header.Set("Content-Type", contentType)
		msg := e.adminRefusal(r)
		if origin != "" && !strings.EqualFold(origin, "http://"+host) && msg == "" {
			t.Errorf("Host %q, Origin %q: not refused", host, origin)
		}
	})
}
