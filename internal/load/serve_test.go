package load

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/kvssign/kvssign/vend"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, in   string
		wantStatus int
		wantBody   string
		wantErr    string
	}{
		{"ok", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200, "{}", ""},
		{"lower-case header", "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 3\r\n\r\nabc", 429, "abc", ""},
		{"no length", "HTTP/1.1 200 OK\r\n\r\n", 0, "", "without Content-Length"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 0, "", "Content-Length"},
		{"bad status", "HTTP/1.1 OK\r\n\r\n", 0, "", "status line"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 0, "", "reading a body"},
		{"cut headers", "HTTP/1.1 200 OK\r\nContent-Le", 0, "", "reading headers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || status != tc.wantStatus || string(body) != tc.wantBody {
				t.Errorf("= %d, %q, %v; want %d, %q", status, body, err, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// FuzzReadResponse checks that readResponse reads what net/http writes
// and does not panic on anything else.
func FuzzReadResponse(f *testing.F) {
	f.Add(200, []byte(`{"url":"wss://x"}`), []byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"))
	f.Add(503, []byte{}, []byte("HTTP/1.1 \r\n\r\n"))
	f.Fuzz(func(t *testing.T, status int, body, raw []byte) {
		readResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
		if status < 200 || status > 599 {
			return
		}
		resp := &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		var b bytes.Buffer
		if err := resp.Write(&b); err != nil {
			return
		}
		got, gotBody, err := readResponse(bufio.NewReader(&b), nil)
		if err != nil || got != status || !bytes.Equal(gotBody, body) {
			t.Fatalf("readResponse(%q) = %d, %q, %v; want %d, %q", b.String(), got, gotBody, err, status, body)
		}
	})
}

func TestMinimalHandler(t *testing.T) {
	const token = "kvst_test"
	hash, _ := hex.DecodeString(vend.HashToken(token))
	srv := httptest.NewServer(minimalHandler(hash, minimalBody(1354)))
	defer srv.Close()
	tests := []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/v1/connections", "Bearer " + token, 200},
		{"POST", "/v1/connections", "Bearer other", 401},
		{"POST", "/v1/connections", "", 401},
		{"GET", "/v1/connections", "Bearer " + token, 404},
		{"POST", "/elsewhere", "Bearer " + token, 404},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(serveBody))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s (%q) = %d; want %d", tc.method, tc.path, tc.auth, resp.StatusCode, tc.want)
		}
		if tc.want == 200 && (len(b) != 1354 || resp.Header.Get("Content-Length") != strconv.Itoa(1354)) {
			t.Errorf("body of %d bytes (Content-Length %s); want 1354", len(b), resp.Header.Get("Content-Length"))
		}
	}
}

func TestMinimalChildRejectsBadSpec(t *testing.T) {
	for _, spec := range []string{"", "zz:10", "abcd:10", vend.HashToken("x") + ":ten"} {
		if err := minimalChild(spec); err == nil || !strings.Contains(err.Error(), minimalEnv) {
			t.Errorf("minimalChild(%q) = %v; want an error naming %s", spec, err, minimalEnv)
		}
	}
}

func TestMinimalBodyIsJSONOfTheSize(t *testing.T) {
	for _, n := range []int{0, 5, 11, 12, 1354} {
		b := minimalBody(n)
		if n >= 11 && len(b) != n {
			t.Errorf("minimalBody(%d) has %d bytes", n, len(b))
		}
		if !bytes.HasPrefix(b, []byte(`{"url":"`)) || !bytes.HasSuffix(b, []byte("\"}\n")) {
			t.Errorf("minimalBody(%d) = %q; want a JSON object", n, b)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 3}}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
