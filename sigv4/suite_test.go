package sigv4

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// suiteDir holds AWS's public SigV4 test suite (aws-c-auth's v4 cases),
// copied with its LICENSE and NOTICE so the tests need nothing outside the module.
const suiteDir = "testdata/aws-sigv4-suite/v4"

type suiteContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	Expiration       int64     `json:"expiration_in_seconds"`
	Normalize        bool      `json:"normalize"`
	Region           string    `json:"region"`
	Service          string    `json:"service"`
	SignBody         bool      `json:"sign_body"`
	Timestamp        time.Time `json:"timestamp"`
	OmitSessionToken bool      `json:"omit_session_token"`
}

type suiteRequest struct {
	method, path, rawQuery string
	headers                []header // names as written, values in order
	body                   string
}

// parseSuiteRequest reads request.txt: a request line, headers (a line that
// starts with white space continues the previous value), a blank line, body.
func parseSuiteRequest(t *testing.T, data string) suiteRequest {
	t.Helper()
	head, body, _ := strings.Cut(data, "\n\n")
	sc := bufio.NewScanner(strings.NewReader(head))
	sc.Scan()
	line := strings.Split(sc.Text(), " ")
	if len(line) < 3 {
		t.Fatalf("request line %q", sc.Text())
	}
	var r suiteRequest
	r.method = line[0]
	target := strings.Join(line[1:len(line)-1], " ")
	r.path, r.rawQuery, _ = strings.Cut(target, "?")
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			h := &r.headers[len(r.headers)-1]
			h.values[len(h.values)-1] += "\n" + l
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		found := false
		for i := range r.headers {
			if strings.EqualFold(r.headers[i].name, k) {
				r.headers[i].values = append(r.headers[i].values, v)
				found = true
			}
		}
		if !found {
			r.headers = append(r.headers, header{name: k, values: []string{v}})
		}
	}
	r.body = body
	return r
}

func (r suiteRequest) header(name string) string {
	for _, h := range r.headers {
		if strings.EqualFold(h.name, name) {
			return h.values[0]
		}
	}
	return ""
}

// pathNeedsRawSigning reports whether the suite's request line holds bytes
// that a real client would have escaped (a space, UTF-8): aws-c-auth escapes
// such a raw path once, which is what the signer does with escaping of the
// already-escaped wire path turned off.
func pathNeedsRawSigning(p string) bool {
	for i := 0; i < len(p); i++ {
		if !unreserved(p[i]) && p[i] != '/' {
			return true
		}
	}
	return false
}

type suiteCase struct {
	name string
	ctx  suiteContext
	req  suiteRequest
	dir  string
}

func loadSuite(t *testing.T) []suiteCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(suiteDir, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("AWS SigV4 test suite not found at %s: %v", suiteDir, err)
	}
	var cases []suiteCase
	for _, d := range dirs {
		var c suiteCase
		c.name, c.dir = filepath.Base(d), d
		if err := json.Unmarshal(readFile(t, d, "context.json"), &c.ctx); err != nil {
			t.Fatalf("%s: context.json: %v", c.name, err)
		}
		c.req = parseSuiteRequest(t, string(readFile(t, d, "request.txt")))
		cases = append(cases, c)
	}
	return cases
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c suiteCase) signer(trace *[2]string) *Signer {
	return &Signer{
		Service:                   c.ctx.Service,
		Region:                    c.ctx.Region,
		TokenAfterSigning:         c.ctx.OmitSessionToken,
		DisablePathNormalization:  !c.ctx.Normalize,
		DisableDoublePathEscaping: pathNeedsRawSigning(c.req.path),
		ContentSHA256Header:       c.ctx.SignBody,
		Clock:                     func() time.Time { return c.ctx.Timestamp },
		Trace:                     func(cr, sts string) { trace[0], trace[1] = cr, sts },
	}
}

func (c suiteCase) creds() Credentials {
	return Credentials{AccessKeyID: c.ctx.Credentials.AccessKeyID, SecretAccessKey: c.ctx.Credentials.SecretAccessKey, SessionToken: c.ctx.Credentials.Token}
}

func (c suiteCase) httpRequest() *http.Request {
	req := &http.Request{
		Method: c.req.method,
		URL:    &url.URL{Scheme: "https", Host: c.req.header("Host"), Path: c.req.path, RawQuery: c.req.rawQuery},
		Host:   c.req.header("Host"),
		Header: http.Header{},
	}
	for _, h := range c.req.headers {
		if !strings.EqualFold(h.name, "host") {
			req.Header[h.name] = h.values
		}
	}
	if c.req.body != "" {
		body := c.req.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		req.Body, _ = req.GetBody()
	}
	return req
}

func TestAWSSuiteHeader(t *testing.T) {
	for _, c := range loadSuite(t) {
		t.Run(c.name, func(t *testing.T) {
			var trace [2]string
			req := c.httpRequest()
			if err := c.signer(&trace).SignRequest(context.Background(), c.creds(), req, ""); err != nil {
				t.Fatal(err)
			}
			wantCR := string(readFile(t, c.dir, "header-canonical-request.txt"))
			if trace[0] != wantCR {
				t.Errorf("canonical request:\n%s\nwant:\n%s", trace[0], wantCR)
			}
			wantSTS := string(readFile(t, c.dir, "header-string-to-sign.txt"))
			if trace[1] != wantSTS {
				t.Errorf("string to sign:\n%s\nwant:\n%s", trace[1], wantSTS)
			}
			want := strings.TrimSpace(string(readFile(t, c.dir, "header-signature.txt")))
			_, got, _ := strings.Cut(req.Header.Get("Authorization"), "Signature=")
			if got != want {
				t.Errorf("signature %s; want %s", got, want)
			}
			if c.ctx.OmitSessionToken && req.Header.Get("X-Amz-Security-Token") != c.ctx.Credentials.Token {
				t.Errorf("token not added after signing")
			}
		})
	}
}

func TestAWSSuiteQuery(t *testing.T) {
	for _, c := range loadSuite(t) {
		t.Run(c.name, func(t *testing.T) {
			var trace [2]string
			q, err := ParseQuery(c.req.rawQuery)
			if err != nil {
				t.Fatal(err)
			}
			hdr := http.Header{}
			for _, h := range c.req.headers {
				if !strings.EqualFold(h.name, "host") {
					hdr[h.name] = h.values
				}
			}
			payload := EmptyPayloadHash
			if c.ctx.SignBody {
				sum := sha256.Sum256([]byte(c.req.body))
				payload = hex.EncodeToString(sum[:])
			}
			req := &PresignRequest{
				Method:      c.req.method,
				Scheme:      "https",
				Host:        c.req.header("Host"),
				Path:        (&url.URL{Path: c.req.path}).EscapedPath(),
				Query:       q,
				Header:      hdr,
				PayloadHash: payload,
				Expires:     time.Duration(c.ctx.Expiration) * time.Second,
			}
			got, err := c.signer(&trace).Presign(context.Background(), c.creds(), req)
			if err != nil {
				t.Fatal(err)
			}
			// A template signs the same URL, with the first parameter open
			// when its name is not repeated, and the trace is the same.
			var ttrace [2]string
			tr := *req
			var open []string
			var values []string
			if len(q) > 0 && !slices.ContainsFunc(q[1:], func(p Param) bool { return p.Name == q[0].Name }) {
				tr.Query, open, values = q[1:], []string{q[0].Name}, []string{q[0].Value}
			}
			tmpl, err := c.signer(&ttrace).NewTemplate(&tr, open...)
			if err != nil {
				t.Fatal(err)
			}
			if tgot, err := tmpl.Presign(context.Background(), c.creds(), c.ctx.Timestamp, values...); err != nil || tgot != got || ttrace != trace {
				t.Errorf("template (open %q) signed %s, %v; want %s", open, tgot, err, got)
			}
			wantCR := string(readFile(t, c.dir, "query-canonical-request.txt"))
			if trace[0] != wantCR {
				t.Errorf("canonical request:\n%s\nwant:\n%s", trace[0], wantCR)
			}
			wantSTS := string(readFile(t, c.dir, "query-string-to-sign.txt"))
			if trace[1] != wantSTS {
				t.Errorf("string to sign:\n%s\nwant:\n%s", trace[1], wantSTS)
			}
			want := strings.TrimSpace(string(readFile(t, c.dir, "query-signature.txt")))
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if sig := u.Query().Get(ParamSignature); sig != want {
				t.Errorf("signature %s; want %s", sig, want)
			}
			if c.ctx.OmitSessionToken && u.Query().Get(ParamSecurityToken) != c.ctx.Credentials.Token {
				t.Errorf("token not appended after signing")
			}
		})
	}
}
