package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvssign/kvssign/sigv4"
)

var (
	apiKey     = sigv4.Credentials{AccessKeyID: "AKIDREQUESTTEST", SecretAccessKey: "request-secret-key"}
	apiSession = sigv4.Credentials{AccessKeyID: "ASIAREQUESTTEST", SecretAccessKey: "request-secret-2", SessionToken: "request+session/token=="}
)

// iamAPI is an API behind sigv4.RequireSignature, as API Gateway with IAM
// authorization: it echoes who signed, the method, path, query and body.
func iamAPI(t *testing.T) string {
	v := &sigv4.Verifier{Service: "execute-api", Region: "us-east-1", Lookup: func(_ context.Context, id string) (sigv4.Credentials, error) {
		for _, c := range []sigv4.Credentials{apiKey, apiSession} {
			if c.AccessKeyID == id {
				return c, nil
			}
		}
		return sigv4.Credentials{}, sigv4.ErrUnknownAccessKey
	}}
	srv := httptest.NewServer(sigv4.RequireSignature(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := sigv4.ResultFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"caller": res.AccessKeyID, "method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery,
			"body": string(body), "type": r.Header.Get("Content-Type"),
		})
	})))
	t.Cleanup(srv.Close)
	return srv.URL
}

func setCreds(t *testing.T, c sigv4.Credentials) {
	for _, k := range awsEnv {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", c.SessionToken)
}

func TestRequestThroughTheMiddleware(t *testing.T) {
	api := iamAPI(t)
	setCreds(t, apiSession)
	body := filepath.Join(t.TempDir(), "pet.json")
	os.WriteFile(body, []byte(`{"name":"Tom"}`), 0o600)
	base := []string{"request", "--service", "execute-api", "--region", "us-east-1"}
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  map[string]string
	}{
		{"GET with a query", []string{api + "/pets?kind=cat&name=a%20b"}, "", map[string]string{"method": "GET", "path": "/pets", "query": "kind=cat&name=a%20b", "body": ""}},
		{"POST a file", []string{"-d", "@" + body, "-H", "Content-Type: application/json", api + "/pets"}, "", map[string]string{"method": "POST", "body": `{"name":"Tom"}`, "type": "application/json"}},
		{"PUT from stdin", []string{"-X", "put", "-d", "-", api + "/pets/1"}, "from stdin", map[string]string{"method": "PUT", "path": "/pets/1", "body": "from stdin"}},
		{"DELETE", []string{"-X", "DELETE", api + "/pets/1"}, "", map[string]string{"method": "DELETE", "caller": apiSession.AccessKeyID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, strings.NewReader(tc.stdin), append(base, tc.args...)...)
			var got map[string]string
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &got) != nil {
				t.Fatalf("%v", r)
			}
			for k, want := range tc.want {
				if got[k] != want {
					t.Errorf("%s = %q; want %q", k, got[k], want)
				}
			}
		})
	}

	r := cli(t, nil, append(base, "-i", api+"/pets")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK\n") || !strings.Contains(r.stdout, "Content-Type: application/json\n") || !strings.Contains(r.stdout, "\n\n{") {
		t.Errorf("request -i: %v", r)
	}
	r = cli(t, nil, append(base, "--output", "json", api+"/pets")...)
	var j struct {
		Status int               `json:"status"`
		Body   map[string]string `json:"body"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &j) != nil || j.Status != 200 || j.Body["caller"] != apiSession.AccessKeyID {
		t.Errorf("request --output json: %v", r)
	}
}

func TestRequestRefused(t *testing.T) {
	api := iamAPI(t)
	base := []string{"request", "--service", "execute-api", "--region", "us-east-1"}
	cases := []struct {
		name  string
		creds sigv4.Credentials
		args  []string
		want  []string
	}{
		{"wrong secret", sigv4.Credentials{AccessKeyID: apiKey.AccessKeyID, SecretAccessKey: "wrong"}, nil,
			[]string{"HTTP 403 Forbidden", "signature we calculated does not match", "likely cause", "AWS_SECRET_ACCESS_KEY"}},
		{"unknown key", sigv4.Credentials{AccessKeyID: "AKIDNOBODY", SecretAccessKey: "x"}, nil,
			[]string{"HTTP 403", "security token included in the request is invalid", "does not know the access key id"}},
		{"clock ahead", apiKey, []string{"--clock-offset", "10m"},
			[]string{"Signature not yet current", "clock skew", "--clock-offset=0s"}},
		{"wrong region", apiKey, []string{"--region", "eu-west-1"},
			[]string{"Credential should be scoped to a valid region", "signed for eu-west-1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setCreds(t, tc.creds)
			r := cli(t, nil, append(append(base, tc.args...), api+"/pets")...)
			if r.code != 1 {
				t.Fatalf("%v; want exit 1", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if !strings.Contains(r.stdout, `"message"`) {
				t.Errorf("stdout %q; want the 403's body", r.stdout)
			}
		})
	}
}

func TestRequestUsageErrors(t *testing.T) {
	setCreds(t, apiKey)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"request"}, "accepts 1 arg"},
		{"relative URL", []string{"request", "--service", "s", "--region", "us-east-1", "/pets"}, "must be an absolute http"},
		{"no service", []string{"request", "--region", "us-east-1", "http://127.0.0.1:1/"}, "--service is required"},
		{"bad header", []string{"request", "--service", "s", "--region", "us-east-1", "-H", "nocolon", "http://127.0.0.1:1/"}, "must be 'Name: value'"},
		{"signer header", []string{"request", "--service", "s", "--region", "us-east-1", "-H", "Authorization: x", "http://127.0.0.1:1/"}, "is set by the signer"},
		{"missing file", []string{"request", "--service", "s", "--region", "us-east-1", "-d", "@/nonexistent", "http://127.0.0.1:1/"}, "--data @/nonexistent"},
		{"bad output", []string{"request", "--service", "s", "--region", "us-east-1", "--output", "x", "http://127.0.0.1:1/"}, "must be text or json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := cli(t, nil, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v; want exit 2 mentioning %q", r, tc.want)
			}
		})
	}
	r := cli(t, nil, "request", "--service", "s", "--region", "us-east-1", "--timeout", "2s", "http://127.0.0.1:1/")
	if r.code != 1 || !strings.Contains(r.stderr, "no answer") {
		t.Errorf("request to a closed port: %v", r)
	}
}

func TestServiceFromHost(t *testing.T) {
	cases := []struct{ host, service, region string }{
		{"abc123.execute-api.us-east-1.amazonaws.com", "execute-api", "us-east-1"},
		{"abcdefgh.lambda-url.eu-west-1.on.aws", "lambda", "eu-west-1"},
		{"kinesisvideo.us-west-2.amazonaws.com", "kinesisvideo", "us-west-2"},
		{"example.com", "", ""},
		{"127.0.0.1", "", ""},
	}
	for _, tc := range cases {
		if s, r := serviceFromHost(tc.host); s != tc.service || r != tc.region {
			t.Errorf("serviceFromHost(%q) = %q, %q; want %q, %q", tc.host, s, r, tc.service, tc.region)
		}
	}
}
