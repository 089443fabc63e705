// Running as an AWS Lambda function behind API Gateway: API Gateway proxy
// events become http.Requests for the server, and its answers become proxy
// responses.

package vend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// HandleLambda answers one API Gateway proxy event: a REST API's (payload
// format 1.0) or an HTTP API's (payload format 2.0), told apart by the
// event's version field. Pass it to lambda.Start. The caller's address is
// the one API Gateway saw, not X-Forwarded-For.
func (s *Server) HandleLambda(ctx context.Context, event json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(event, &probe); err != nil {
		return nil, fmt.Errorf("vend: lambda event: %v", err)
	}
	if probe.Version == "2.0" {
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(event, &ev); err != nil {
			return nil, fmt.Errorf("vend: lambda event: %v", err)
		}
		return s.ServeAPIGatewayV2(ctx, ev)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(event, &ev); err != nil {
		return nil, fmt.Errorf("vend: lambda event: %v", err)
	}
	return s.ServeAPIGateway(ctx, ev)
}

// ServeAPIGateway answers a REST API proxy event (payload format 1.0).
func (s *Server) ServeAPIGateway(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	q := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = vs
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	h := http.Header{}
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
	r, err := lambdaRequest(ctx, ev.HTTPMethod, ev.Path, q.Encode(), h, ev.Body, ev.IsBase64Encoded, ev.RequestContext.Identity.SourceIP)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	w := newLambdaWriter()
	s.ServeHTTP(w, r)
	body, b64 := w.body()
	return events.APIGatewayProxyResponse{StatusCode: w.status, MultiValueHeaders: w.h, Body: body, IsBase64Encoded: b64}, nil
}

// ServeAPIGatewayV2 answers an HTTP API proxy event (payload format 2.0).
func (s *Server) ServeAPIGatewayV2(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	h := http.Header{}
	for k, v := range ev.Headers {
		h.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		h.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	path := ev.RawPath
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		// Without a custom domain, the path starts with the stage.
		if rest, ok := strings.CutPrefix(path, "/"+st+"/"); ok {
			path = "/" + rest
		}
	}
	r, err := lambdaRequest(ctx, ev.RequestContext.HTTP.Method, path, ev.RawQueryString, h, ev.Body, ev.IsBase64Encoded, ev.RequestContext.HTTP.SourceIP)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	w := newLambdaWriter()
	s.ServeHTTP(w, r)
	body, b64 := w.body()
	out := events.APIGatewayV2HTTPResponse{StatusCode: w.status, Headers: make(map[string]string, len(w.h)), Body: body, IsBase64Encoded: b64}
	for k, vs := range w.h {
		if k == "Set-Cookie" {
			out.Cookies = vs
			continue
		}
		out.Headers[k] = strings.Join(vs, ", ")
	}
	return out, nil
}

func lambdaRequest(ctx context.Context, method, path, rawQuery string, h http.Header, body string, b64 bool, sourceIP string) (*http.Request, error) {
	if method == "" {
		return nil, errors.New("vend: lambda event: no HTTP method")
	}
	if path == "" {
		path = "/"
	}
	var b []byte
	if b64 {
		var err error
		if b, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("vend: lambda event: body is not valid base64")
		}
	} else {
		b = []byte(body)
	}
	u := &url.URL{Path: path, RawQuery: rawQuery}
	r, err := http.NewRequestWithContext(ctx, method, u.RequestURI(), bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("vend: lambda event: %v", err)
	}
	r.RequestURI = u.RequestURI()
	r.Header = h
	r.Host = h.Get("Host")
	r.ContentLength = int64(len(b))
	if sourceIP != "" {
		r.RemoteAddr = net.JoinHostPort(sourceIP, "0")
	}
	return r, nil
}

// lambdaWriter collects a response for API Gateway.
type lambdaWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func newLambdaWriter() *lambdaWriter { return &lambdaWriter{h: http.Header{}} }

func (w *lambdaWriter) Header() http.Header { return w.h }

func (w *lambdaWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *lambdaWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

// body returns the body as API Gateway wants it: as is for text, base64
// for anything else.
func (w *lambdaWriter) body() (string, bool) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	ct := w.h.Get("Content-Type")
	if strings.HasPrefix(ct, "text/") || strings.HasPrefix(ct, "application/json") || strings.Contains(ct, "javascript") || w.buf.Len() == 0 {
		return w.buf.String(), false
	}
	return base64.StdEncoding.EncodeToString(w.buf.Bytes()), true
}
