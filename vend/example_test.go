package vend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
	"github.com/kvssign/kvssign/vend"
)

// staticBackend knows one channel. A real server uses
// vend.NewResolverBackend over an awskvs.Resolver.
type staticBackend struct{}

// Forget has nothing to forget: staticBackend caches nothing.
func (staticBackend) Forget(string) {}

func (staticBackend) Connection(ctx context.Context, channel string, role kvs.Role, create bool) (vend.Target, error) {
	if channel != "front-door" {
		return vend.Target{}, vend.ErrChannelNotFound
	}
	return vend.Target{
		ChannelARN: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/front-door/1700000000000",
		Region:     "us-west-2",
		Endpoint:   "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com",
		ICEServers: []vend.ICEServer{{URLs: []string{"stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"}}},
		FromCache:  true,
	}, nil
}

const exampleConfig = `{
  "auth": {"tokens": [{"name": "alice", "sha256": "` + "6a3ac4f54d0bb1b4b4c0bd2a1d94ec7b2e1ae6b10b7fd0ba4e1b7d7f2e5c3b10" + `"}]},
  "rules": [{"principals": ["token:alice"], "channels": ["front-*"], "roles": ["VIEWER"]}]
}`

// ExampleNew runs a vending server and asks it for a viewer URL, as a
// browser would.
func ExampleNew() {
	token := "kvst_example-token-for-alice"
	cfg, err := vend.ParseConfig([]byte(strings.Replace(exampleConfig,
		"6a3ac4f54d0bb1b4b4c0bd2a1d94ec7b2e1ae6b10b7fd0ba4e1b7d7f2e5c3b10", vend.HashToken(token), 1)))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := vend.New(cfg, vend.Options{
		Backend:     staticBackend{},
		Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
	})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	req, _ := http.NewRequest("POST", ts.URL+"/v1/connections",
		strings.NewReader(`{"channel":"front-door","role":"VIEWER","clientId":"token-alice.phone"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		URL        string           `json:"url"`
		Role       string           `json:"role"`
		ClientID   string           `json:"clientId"`
		ChannelARN string           `json:"channelArn"`
		ICEServers []vend.ICEServer `json:"iceServers"`
	}
	json.NewDecoder(resp.Body).Decode(&got)
	fmt.Println(resp.Status)
	fmt.Println(got.Role, got.ClientID)
	fmt.Println(strings.HasPrefix(got.URL, "wss://v-1a2b3c4d.kinesisvideo.us-west-2.amazonaws.com/?X-Amz-Algorithm="))
	fmt.Println(got.ICEServers[0].URLs[0])
	// Output:
	// 200 OK
	// VIEWER token-alice.phone
	// true
	// stun:stun.kinesisvideo.us-west-2.amazonaws.com:443
}

// ExampleHashToken prints what goes into a config's auth.tokens[].sha256.
func ExampleHashToken() {
	fmt.Println(vend.HashToken("kvst_example-token-for-alice"))
	// Output: 5e22e580014b6b0db3dfaefa4d33bb6b2abfce46fabad307c83bc2640b1ff3fd
}

// ExampleParseConfig shows that a configuration error names the field and
// the rule.
func ExampleParseConfig() {
	_, err := vend.ParseConfig([]byte(`{"auth":{"tokens":[{"name":"cam","sha256":"abc"}]},"rules":[]}`))
	fmt.Println(err)
	// Output: vend: config: auth.tokens[0].sha256: must be 64 hex digits (the SHA-256 of the token; see kvssign serve hash-token)
}

// ExampleServer_ServeAPIGatewayV2 answers an API Gateway HTTP API event,
// as the server does when it runs as a Lambda function.
func ExampleServer_ServeAPIGatewayV2() {
	token := "kvst_example-token-for-alice"
	cfg, _ := vend.ParseConfig([]byte(strings.Replace(exampleConfig,
		"6a3ac4f54d0bb1b4b4c0bd2a1d94ec7b2e1ae6b10b7fd0ba4e1b7d7f2e5c3b10", vend.HashToken(token), 1)))
	srv, _ := vend.New(cfg, vend.Options{Backend: staticBackend{},
		Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}})
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/v1/connections",
		Headers: map[string]string{"authorization": "Bearer " + token, "content-type": "application/json"},
		Body:    `{"channel":"back-door","role":"VIEWER"}`,
	}
	ev.RequestContext.HTTP.Method = "POST"
	ev.RequestContext.HTTP.SourceIP = "198.51.100.7"
	resp, _ := srv.ServeAPIGatewayV2(context.Background(), ev)
	fmt.Println(resp.StatusCode, resp.Body)
	// Output: 403 {"error":{"code":"forbidden","message":"you may not connect to channel \"back-door\" as VIEWER"}}
}

// ExampleServer_Listener serves on a loopback listener as kvssign serve
// does: a request whose headers are over the limit is answered by net/http
// itself, and still in JSON.
func ExampleServer_Listener() {
	cfg, err := vend.ParseConfig([]byte(exampleConfig))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := vend.New(cfg, vend.Options{Backend: staticBackend{},
		Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hs := srv.HTTPServer(ln.Addr().String())
	go hs.Serve(srv.Listener(ln))
	defer hs.Close()

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/healthz", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 20<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), e.Error.Code)
	// Output: 431 application/json headers_too_large
}
