package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFSHasThePage(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatalf("ReadFile(FS, %q): %v; run npm run build in web/", name, err)
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestServedIndexLoadsTheBundle(t *testing.T) {
	srv := httptest.NewServer(http.FileServerFS(FS))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d; want 200", res.StatusCode)
	}
	for _, want := range []string{`<script src="app.js">`, `href="app.css"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// The bundle must not carry anything that looks like an AWS key: the page
// gets a signed URL, never credentials.
func TestBundleHasNoAccessKey(t *testing.T) {
	b, err := fs.ReadFile(FS, "app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"AKIA", "ASIA"} {
		if i := strings.Index(string(b), prefix); i >= 0 {
			t.Errorf("app.js contains %q at %d", prefix, i)
		}
	}
}
