package emulator

import (
	"net/url"
	"testing"
)

var rawQueries = []string{
	"X-Amz-Date=20260102T030405Z&X-Amz-Expires=300",
	"a=1&X-Amz-Expires=30&X-Amz-Date=x&X-Amz-Date=y",
	"X-Amz-%44ate=20260102T030405Z&X-Amz-Expires=3%30",
	"X-Amz-Date=bad%zz&X-Amz-Date=good",
	"X-Amz-Date;=1&X-Amz-Date=2;&X-Amz-Date=3",
	"X-Amz-Expires&X-Amz-Date=",
	"X-Amz-Date=a+b&&=&X-Amz-Expires=%2B1",
	"",
}

func checkQueryParams(t *testing.T, raw string) {
	t.Helper()
	q, _ := url.ParseQuery(raw)
	a, b := queryParams(raw, "X-Amz-Date", "X-Amz-Expires")
	if a != q.Get("X-Amz-Date") || b != q.Get("X-Amz-Expires") {
		t.Fatalf("queryParams(%q) = %q, %q; url.ParseQuery: %q, %q", raw, a, b, q.Get("X-Amz-Date"), q.Get("X-Amz-Expires"))
	}
}

func TestQueryParamsMatchesParseQuery(t *testing.T) {
	for _, raw := range rawQueries {
		checkQueryParams(t, raw)
	}
}

func FuzzQueryParams(f *testing.F) {
	for _, raw := range rawQueries {
		f.Add(raw)
	}
	f.Fuzz(checkQueryParams)
}
