package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/diagnose"
	"github.com/kvssign/kvssign/sigv4"
)

type requestFlags struct {
	outputFlags
	aws          awsFlags
	method, data string
	service      string
	headers      []string
	include      bool
}

// maxJSONBody bounds a response body read for --output json.
const maxJSONBody = 10 << 20

func newRequestCmd() *cobra.Command {
	var f requestFlags
	c := &cobra.Command{
		Use:   "request [-X METHOD] [-H 'K: V']... [-d @FILE|-|DATA] --service S [--region R] URL",
		Short: "Send an HTTP request signed with SigV4 headers and print the response",
		Long: `Sign an HTTP request with SigV4 (the Authorization header, as an API Gateway
client with IAM authorization does) and send it, like curl: the response body
goes to stdout (with -i, after the status line and headers).

The service and region are taken from the URL when it is an AWS host such as
abc123.execute-api.us-east-1.amazonaws.com; otherwise give --service (and
--region, or AWS_REGION, or the profile's). Credentials come from the
environment, --profile or --role-arn. -d @FILE sends a file, -d - stdin; with
-d the method defaults to POST. Redirects are not followed, so signed headers
never go to another host.

Exit status 1 for an answer of 400 or more, with the likely cause when the
signature was refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return finish(c.OutOrStdout(), false, runRequest(c.Context(), c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr(), &f, args[0]))
		},
	}
	fs := c.Flags()
	fs.StringVarP(&f.method, "request", "X", "", "HTTP method (default: GET, or POST with -d)")
	fs.StringArrayVarP(&f.headers, "header", "H", nil, "a header 'Name: value' to send and sign (repeatable)")
	fs.StringVarP(&f.data, "data", "d", "", "the body: DATA, @FILE, or - for stdin")
	fs.StringVar(&f.service, "service", "", "the service's signing name, e.g. execute-api (default: from the URL's host)")
	fs.BoolVarP(&f.include, "include", "i", false, "print the status line and headers before the body")
	f.aws.registerTimeout(fs, true, true, 30*time.Second)
	f.outputFlags.register(fs, true)
	registerCompletions(c)
	return c
}

// serviceFromHost reads SERVICE and REGION from an AWS host name:
// ID.execute-api.REGION.amazonaws.com, ID.lambda-url.REGION.on.aws, or
// SERVICE.REGION.amazonaws.com.
func serviceFromHost(host string) (service, region string) {
	if h, ok := strings.CutSuffix(host, ".on.aws"); ok {
		if parts := strings.Split(h, "."); len(parts) == 3 && parts[1] == "lambda-url" {
			return "lambda", parts[2]
		}
		return "", ""
	}
	h, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		return "", ""
	}
	parts := strings.Split(h, ".")
	switch {
	case len(parts) == 3 && parts[1] == "execute-api":
		return "execute-api", parts[2]
	case len(parts) == 2:
		return parts[0], parts[1]
	}
	return "", ""
}

func runRequest(ctx context.Context, stdin io.Reader, out, stderr io.Writer, f *requestFlags, raw string) error {
	if err := f.check(); err != nil {
		return err
	}
	u, service, region, err := requestTarget(f, raw)
	if err != nil {
		return err
	}
	header, host, err := requestHeaders(f.headers)
	if err != nil {
		return err
	}
	body, err := requestBody(f.data, stdin)
	if err != nil {
		return err
	}
	method := strings.ToUpper(f.method)
	if method == "" {
		method = http.MethodGet
		if f.data != "" {
			method = http.MethodPost
		}
	}
	dbg := newDebugLog(f.debug, stderr)
	c, region, err := requestCredentials(ctx, f, dbg, region)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, f.aws.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return usagef("request: %v", err)
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header = header
	if host != "" {
		req.Host = host
	}
	signer := &sigv4.Signer{Service: service, Region: region, Clock: func() time.Time { return time.Now().Add(f.aws.clockOffset) }}
	if dbg.enabled() {
		signer.Trace = dbg.trace
	}
	if err := signer.SignRequest(ctx, c, req, ""); err != nil {
		return usageError{err}
	}
	if dbg.enabled() {
		dbg.printf("> %s %s", method, u.String())
		for _, k := range sortedKeys(req.Header) {
			for _, v := range req.Header[k] {
				dbg.printf("> %s: %s", k, redactHeader(k, v))
			}
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		d := diagnose.Explain(diagnose.Failure{NoAnswer: true, Message: err.Error()})
		return diagnosedError{err: fmt.Errorf("request: %w", err), d: d}
	}
	defer resp.Body.Close()
	dbg.printf("< %s in %v", resp.Status, time.Since(sent).Round(time.Millisecond))
	var failure error
	if resp.StatusCode >= 400 {
		failure = requestFailure(resp, f.aws.clockOffset, region, service)
	}
	if f.json() {
		return writeResponseJSON(out, resp, failure)
	}
	return writeResponse(out, resp, f.include, failure)
}

// requestTarget checks the URL and the timeout, and finds the service and
// region to sign for: the flags', else the URL's host's.
func requestTarget(f *requestFlags, raw string) (u *url.URL, service, region string, err error) {
	u, err = url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", "", usagef("URL %q: must be an absolute http:// or https:// URL", raw)
	}
	if u.User != nil {
		return nil, "", "", usagef("URL: must have no user info")
	}
	service, region = serviceFromHost(u.Hostname())
	if f.service != "" {
		service = f.service
	}
	if f.aws.region != "" {
		region = f.aws.region
	}
	if service == "" {
		return nil, "", "", usagef("--service is required for host %s (e.g. execute-api)", u.Host)
	}
	if f.aws.timeout <= 0 {
		return nil, "", "", usagef("--timeout %v: must be positive", f.aws.timeout)
	}
	return u, service, region, nil
}

// requestHeaders reads the --header flags; a Host header is returned apart,
// as net/http sends it from Request.Host.
func requestHeaders(flags []string) (header http.Header, host string, err error) {
	header = http.Header{}
	for _, h := range flags {
		k, v, ok := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, "", usagef("--header %q: must be 'Name: value'", h)
		}
		if strings.EqualFold(k, "Host") {
			host = v
			continue
		}
		if strings.EqualFold(k, "Authorization") || strings.HasPrefix(strings.ToLower(k), "x-amz-date") {
			return nil, "", usagef("--header %q: is set by the signer", k)
		}
		header.Add(k, v)
	}
	return header, host, nil
}

// requestBody reads the body --data names: DATA, @FILE, or - for stdin.
func requestBody(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "-":
		body, err := io.ReadAll(io.LimitReader(stdin, sigv4.MaxSignedBody+1))
		if err != nil {
			return nil, fmt.Errorf("request: reading stdin: %w", err)
		}
		return body, nil
	case strings.HasPrefix(data, "@"):
		body, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, usagef("--data %s: %v", data, errors.Unwrap(err))
		}
		return body, nil
	}
	return []byte(data), nil
}

// requestCredentials retrieves the credentials to sign with, and the
// region when neither the flags nor the URL gave it.
func requestCredentials(ctx context.Context, f *requestFlags, dbg *debugLog, region string) (sigv4.Credentials, string, error) {
	if region == "" {
		region = orDefault(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	}
	var creds sigv4.CredentialsProvider
	if region == "" || f.aws.usesChain() {
		// The profile may hold the region, the credentials or the role.
		f.aws.region = region
		cfg, err := f.aws.config(ctx, dbg, "")
		if err != nil {
			return sigv4.Credentials{}, "", err
		}
		region = cfg.Region
		creds = awskvs.Credentials(cfg.Credentials, 0)
	}
	if !f.aws.usesChain() {
		c, err := envCredentials()
		if err != nil {
			return sigv4.Credentials{}, "", err
		}
		creds = c
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return sigv4.Credentials{}, "", explainAWS(err, diagnose.Failure{})
	}
	return c, region, nil
}

// writeResponseJSON writes the answer as one JSON object for --output json.
func writeResponseJSON(out io.Writer, resp *http.Response, failure error) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if err != nil {
		return fmt.Errorf("request: reading the response: %w", err)
	}
	res := struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    any               `json:"body"`
	}{Status: resp.StatusCode, Headers: map[string]string{}}
	for _, k := range sortedKeys(resp.Header) {
		res.Headers[k] = strings.Join(resp.Header.Values(k), ", ")
	}
	var v any
	if json.Unmarshal(data, &v) == nil {
		res.Body = json.RawMessage(data)
	} else {
		res.Body = string(data)
	}
	if err := writeJSON(out, res); err != nil {
		return err
	}
	if failure != nil {
		failure = failureWithBody(failure, data)
	}
	return failure
}

// writeResponse copies the body to out, after the status line and headers
// with include, and keeps the start of a failure's body for its message.
func writeResponse(out io.Writer, resp *http.Response, include bool, failure error) error {
	if include {
		fmt.Fprintf(out, "%s %s\n", printable(resp.Proto), printable(resp.Status))
		for _, k := range sortedKeys(resp.Header) {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(out, "%s: %s\n", printable(k), printable(v))
			}
		}
		fmt.Fprintln(out)
	}
	var copied bytes.Buffer
	w := out
	if failure != nil {
		w = io.MultiWriter(out, &limitedBuffer{b: &copied, max: 4096})
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("request: reading the response: %w", err)
	}
	if failure != nil {
		failure = failureWithBody(failure, copied.Bytes())
	}
	return failure
}

// requestError is an answer of 400 or more.
type requestError struct {
	resp                  *http.Response
	offset                time.Duration
	region, service, body string
}

func requestFailure(resp *http.Response, offset time.Duration, region, service string) error {
	return &requestError{resp: resp, offset: offset, region: region, service: service}
}

func failureWithBody(err error, body []byte) error {
	re := err.(*requestError)
	re.body = bodyMessage(body)
	code, _, _ := strings.Cut(re.resp.Header.Get("x-amzn-ErrorType"), ":")
	date, _ := parseHTTPDate(re.resp.Header.Get("Date"))
	d := diagnose.Explain(diagnose.Failure{Op: re.service, Status: re.resp.StatusCode, Code: code, Message: re.body,
		ServerDate: date, LocalNow: time.Now(), ClockOffset: re.offset, Region: re.region})
	if d.Cause == diagnose.CauseUnknownChannel {
		d = diagnose.Diagnosis{} // a 404 from an API is about its resource, not a channel
	}
	if d.Cause == "" {
		return re
	}
	return diagnosedError{err: re, d: d}
}

func (e *requestError) Error() string {
	s := "request: HTTP " + e.resp.Status
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// redactHeader hides the signature and the session token of a request
// header for --debug.
func redactHeader(name, value string) string {
	switch strings.ToLower(name) {
	case "x-amz-security-token":
		return "REDACTED"
	case "authorization":
		return sigv4.Redact(value)
	}
	return value
}

// bodyMessage reads {"message"} or {"Message"} from an error body, or the
// body itself, shortened.
func bodyMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for k, v := range m {
			if s, ok := v.(string); ok && strings.EqualFold(k, "message") {
				return s
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
