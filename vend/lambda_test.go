package vend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/prometheus/client_golang/prometheus"
)

func newLambdaServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, Options{Backend: newFakeBackend("cam-1"), Credentials: testCreds, Logger: testLogger(), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLambdaRESTAPI(t *testing.T) {
	s := newLambdaServer(t, baseConfig())
	body := `{"channel":"cam-1","role":"VIEWER"}`
	cases := []struct {
		name   string
		ev     events.APIGatewayProxyRequest
		status int
	}{
		{"vend", events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/connections", Body: body,
			Headers: map[string]string{"authorization": "Bearer " + tokAlice, "content-type": "application/json"}}, 200},
		{"multi-value headers, base64 body", events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/connections",
			Body: base64.StdEncoding.EncodeToString([]byte(body)), IsBase64Encoded: true,
			MultiValueHeaders: map[string][]string{"Authorization": {"Bearer " + tokAlice}, "Content-Type": {"application/json"}}}, 200},
		{"no token", events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/connections", Body: body,
			Headers: map[string]string{"content-type": "application/json"}}, 401},
		{"forbidden", events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/connections", Body: `{"channel":"cam-1","role":"MASTER"}`,
			Headers: map[string]string{"authorization": "Bearer " + tokAlice, "content-type": "application/json"}}, 403},
		{"health", events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/healthz"}, 200},
		{"unknown path", events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/nope"}, 404},
	}
	for _, c := range cases {
		c.ev.RequestContext.Identity.SourceIP = "198.51.100.4"
		resp, err := s.ServeAPIGateway(context.Background(), c.ev)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d; want %d (%s)", c.name, resp.StatusCode, c.status, resp.Body)
		}
		if resp.IsBase64Encoded || resp.MultiValueHeaders["Content-Type"][0] != "application/json" {
			t.Errorf("%s: a JSON answer should be plain text: %+v", c.name, resp.MultiValueHeaders)
		}
		if c.status == 200 && c.ev.Path == "/v1/connections" {
			var got connectionResponse
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || got.URL == "" {
				t.Errorf("%s: body %q: %v", c.name, resp.Body, err)
			}
			noteSigned(got)
		}
	}
}

func TestLambdaHTTPAPI(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.PerIP = Rate{PerSecond: 1, Burst: 1}
	s := newLambdaServer(t, cfg)
	raw := func(ip, stage, path string) json.RawMessage {
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RawPath: path, Body: `{"channel":"cam-1","role":"VIEWER"}`,
			Headers: map[string]string{"authorization": "Bearer " + tokAlice, "content-type": "application/json"},
		}
		ev.RequestContext.Stage = stage
		ev.RequestContext.HTTP.Method = "POST"
		ev.RequestContext.HTTP.SourceIP = ip
		b, _ := json.Marshal(ev)
		return b
	}
	status := func(out any, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		resp := out.(events.APIGatewayV2HTTPResponse)
		if resp.Headers["Content-Type"] != "application/json" {
			t.Errorf("headers %v", resp.Headers)
		}
		if resp.StatusCode == 200 {
			var got connectionResponse
			json.Unmarshal([]byte(resp.Body), &got)
			noteSigned(got)
			if !strings.HasPrefix(got.ClientID, "token-alice.") {
				t.Errorf("client id %q", got.ClientID)
			}
		}
		return resp.StatusCode
	}
	ctx := context.Background()
	if got := status(s.HandleLambda(ctx, raw("198.51.100.1", "$default", "/v1/connections"))); got != 200 {
		t.Errorf("first request: %d; want 200", got)
	}
	// The stage prefix of a non-default stage is stripped.
	if got := status(s.HandleLambda(ctx, raw("198.51.100.2", "prod", "/prod/v1/connections"))); got != 200 {
		t.Errorf("stage prod: %d; want 200", got)
	}
	// The rate limit applies to API Gateway's source address.
	if got := status(s.HandleLambda(ctx, raw("198.51.100.1", "$default", "/v1/connections"))); got != 429 {
		t.Errorf("same source again: %d; want 429", got)
	}
	// A REST API event through HandleLambda.
	rest := events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/readyz"}
	b, _ := json.Marshal(rest)
	out, err := s.HandleLambda(ctx, b)
	if err != nil || out.(events.APIGatewayProxyResponse).StatusCode != 200 {
		t.Errorf("REST event via HandleLambda: %+v, %v", out, err)
	}
	if _, err := s.HandleLambda(ctx, json.RawMessage(`[]`)); err == nil {
		t.Error("a non-object event was accepted")
	}
	if _, err := s.HandleLambda(ctx, json.RawMessage(`{"version":"2.0"}`)); err == nil {
		t.Error("an event without a method was accepted")
	}
}
