package emulator_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kvssign/kvssign/emulator"
)

func do(t *testing.T, method, url string, header map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestCORSPreflight(t *testing.T) {
	e := start(t, fastConfig())
	requested := "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,x-amz-content-sha256,x-amz-date,x-amz-security-token,x-amz-user-agent"
	for _, path := range []string{"/describeSignalingChannel", "/getSignalingChannelEndpoint", "/", "/ice/r-12345678/v1/get-ice-server-config"} {
		resp := do(t, http.MethodOptions, e.URL()+path, map[string]string{
			"Origin":                         "http://localhost:3000",
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": requested,
		}, "")
		got := map[string]string{
			"status":  resp.Status,
			"origin":  resp.Header.Get("Access-Control-Allow-Origin"),
			"headers": resp.Header.Get("Access-Control-Allow-Headers"),
			"max-age": resp.Header.Get("Access-Control-Max-Age"),
			"post":    boolString(strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST")),
		}
		want := map[string]string{"status": "204 No Content", "origin": "http://localhost:3000", "headers": requested, "max-age": "7200", "post": "true"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("OPTIONS %s (-want +got):\n%s", path, d)
		}
	}

	// Private Network Access: a page asks before calling this loopback
	// emulator. Pages on this machine are granted it; a public site only
	// when listed with --cors-origins, since the default key is public.
	listed := emulator.Config{CORSOrigins: []string{"https://awslabs.github.io"}, DisableTURN: true}
	for _, tc := range []struct {
		name   string
		e      *emulator.Emulator
		origin string
		want   string
	}{
		{"loopback page", e, "http://127.0.0.1:8080", "true"},
		{"localhost page", e, "http://localhost:3000", "true"},
		{"public site, any origin allowed", e, "https://awslabs.github.io", ""},
		{"public site, listed", start(t, listed), "https://awslabs.github.io", "true"},
	} {
		resp := do(t, http.MethodOptions, tc.e.URL()+"/describeSignalingChannel", map[string]string{
			"Origin": tc.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true",
		}, "")
		if got := resp.Header.Get("Access-Control-Allow-Private-Network"); resp.StatusCode != http.StatusNoContent || got != tc.want {
			t.Errorf("%s: private-network preflight = %s, Access-Control-Allow-Private-Network %q; want 204 and %q", tc.name, resp.Status, got, tc.want)
		}
	}

	// An answer carries the origin and exposes what the SDK reads.
	resp := do(t, http.MethodPost, e.URL()+"/describeSignalingChannel", map[string]string{"Origin": "http://localhost:3000", "Content-Type": "application/json"}, "{}")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "x-amzn-ErrorType") {
		t.Errorf("unsigned POST = %s, headers %v; want 403 with CORS headers", resp.Status, resp.Header)
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestCORSOrigins(t *testing.T) {
	cfg := fastConfig()
	cfg.CORSOrigins = []string{"https://app.example"}
	e := start(t, cfg)
	pre := func(origin string) *http.Response {
		return do(t, http.MethodOptions, e.URL()+"/describeSignalingChannel", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization",
		}, "")
	}
	if r := pre("https://app.example"); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("preflight from a listed origin = %s %q; want 204 allowing it", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	if r := pre("https://evil.example"); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %s %q; want 403 without Access-Control-Allow-Origin", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}

	for _, bad := range []string{"app.example", "https://app.example/", "ftp://x", "https://"} {
		c := fastConfig()
		c.CORSOrigins = []string{bad}
		if _, err := emulator.New(c); err == nil || !strings.Contains(err.Error(), "CORS origin") {
			t.Errorf("New with CORS origin %q: %v; want an error naming the CORS origin", bad, err)
		}
	}
}

// TestAdminRefusesCrossSite checks that no web page can drive the admin
// endpoints: each state-changing one refuses a foreign Origin, a
// cross-site fetch, a form's content type and a foreign Host (DNS
// rebinding), while a same-origin or tool request works.
func TestAdminRefusesCrossSite(t *testing.T) {
	e := start(t, fastConfig())
	host := strings.TrimPrefix(e.URL(), "http://")
	endpoints := []struct{ method, path, body string }{
		{"POST", "/_emulator/faults", `{"share":0}`},
		{"PUT", "/_emulator/faults", `{"share":0}`},
		{"DELETE", "/_emulator/faults", ""},
		{"POST", "/_emulator/goaway", ""},
		{"POST", "/_emulator/reconnect-ice-server", ""},
		{"POST", "/_emulator/drop", ""},
		{"POST", "/_emulator/disconnect", ""},
		{"POST", "/_emulator/channels", `{"name":"from-a-page"}`},
		{"GET", "/_emulator/stats", ""},
		{"GET", "/_emulator/connections", ""},
	}
	attacks := []struct {
		name   string
		header map[string]string
		reads  bool // also refused for GET
	}{
		{"foreign origin", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json"}, true},
		{"null origin", map[string]string{"Origin": "null"}, true},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"text/plain", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, false},
		{"form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, false},
		{"multipart", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, false},
		{"rebound host", map[string]string{"Host": "evil.example:" + strings.Split(host, ":")[1]}, true},
	}
	for _, ep := range endpoints {
		for _, a := range attacks {
			if ep.method == "GET" && !a.reads {
				continue
			}
			resp := do(t, ep.method, e.URL()+ep.path, a.header, ep.body)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s with %s = %s; want 403", ep.method, ep.path, a.name, resp.Status)
			}
		}
		// Tools (curl, the CLI) and same-origin pages still work.
		for i, h := range []map[string]string{
			{"Content-Type": "application/json"},
			{"Origin": e.URL(), "Sec-Fetch-Site": "same-origin"},
			{"Host": "localhost"},
		} {
			body := ep.body
			if ep.path == "/_emulator/channels" {
				body = fmt.Sprintf(`{"name":"ok-%d"}`, i)
			}
			if resp := do(t, ep.method, e.URL()+ep.path, h, body); resp.StatusCode != http.StatusOK {
				t.Errorf("%s %s with %v = %s; want 200", ep.method, ep.path, h, resp.Status)
			}
		}
	}
	if n := len(e.Connections()); n != 0 {
		t.Errorf("connections = %d", n)
	}
	if f := e.CurrentFaults(); f.Share != 0 {
		t.Errorf("faults = %+v; want none", f)
	}
}
