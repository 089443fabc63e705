package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--timeout", "30s", "--pings", "2"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("kvssign demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"signed a ConnectAsViewer URL", `data channel "kvssign-demo" open`, `received "echo: ping 2": round trip`, "relayed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if m := regexp.MustCompile(`(?i)Signature=[0-9a-f]{64}`).FindString(text); m != "" {
		t.Errorf("output shows a signature: %s", m)
	}
}

func TestDemoUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--pings", "0"}, "--pings 0: must be from 1 to 1000"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout 0s: must be positive"},
		{[]string{"demo", "--client-id", "AWS_x"}, "--client-id: kvs: client id \"AWS_x\": must not start with AWS_"},
		{[]string{"demo", "--channel", "a b"}, "--channel: kvs: channel name \"a b\""},
		{[]string{"demo", "extra"}, "unknown command"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("kvssign %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestDemoTimeout(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--timeout", "1ns"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "demo: did not finish within 1ns") {
		t.Errorf("exit %d, stderr %q; want 1 and a timeout message", code, errOut.String())
	}
}

// TestDemoBrowser starts `demo --browser`, reads the viewer's page URL it
// prints, and asks the vending service for a URL with the token in it, as
// the page would. The page itself is driven by a real browser in
// scripts/browser-test.sh.
func TestDemoBrowser(t *testing.T) {
	base, stdout, _, stop := startCommand(t, 15*time.Second, "demo", "--browser", "--addr", "127.0.0.1:0")
	m := regexp.MustCompile(`viewer: (http://\S+)#(\S+)`).FindStringSubmatch(stdout.String())
	if m == nil || !strings.HasPrefix(m[1], base) {
		t.Fatalf("no viewer URL on %s in:\n%s", base, stdout)
	}
	frag, err := url.ParseQuery(m[2])
	if err != nil {
		t.Fatal(err)
	}
	page, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), "<html") {
		t.Errorf("GET %s: %d %.80s", m[1], page.StatusCode, html)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/connections",
		strings.NewReader(`{"channel":"`+frag.Get("channel")+`","role":"VIEWER"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+frag.Get("token"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var vended struct{ URL string }
	json.NewDecoder(resp.Body).Decode(&vended)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(vended.URL, "X-Amz-Signature=") {
		t.Errorf("POST /v1/connections: %d %+v", resp.StatusCode, vended)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(stdout.String(), exampleSecretAccessKey) {
		t.Errorf("the output shows the secret key:\n%s", stdout)
	}
}
