package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// httpLoad is a keep-alive HTTP/1.1 load: Conns connections, each sending
// the same request one after another until Requests in all have been
// answered. It writes requests and parses answers by hand, so that the
// load itself costs little of the CPU the servers share with it.
type httpLoad struct {
	Addr     string // host:port
	Request  []byte // a whole HTTP/1.1 request
	Conns    int
	Requests int
}

// loadResult is what one load run measured.
type loadResult struct {
	Requests  int
	Wall      time.Duration
	Latencies []time.Duration // sorted
	BodyBytes int             // of the last answer
}

func (r loadResult) perSec() float64 { return float64(r.Requests) / max(r.Wall.Seconds(), 1e-9) }

// quantile returns the q-quantile of the latencies.
func (r loadResult) quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(int(q*float64(len(r.Latencies))), len(r.Latencies)-1)]
}

// run drives the load; every answer must be 200.
func (l httpLoad) run(ctx context.Context) (loadResult, error) {
	conns := make([]net.Conn, l.Conns)
	var d net.Dialer
	for i := range conns {
		c, err := d.DialContext(ctx, "tcp", l.Addr)
		if err != nil {
			closeAll(conns)
			return loadResult{}, fmt.Errorf("load: dialing %s: %w", l.Addr, err)
		}
		conns[i] = c
	}
	defer closeAll(conns)
	stop := context.AfterFunc(ctx, func() { closeAll(conns) })
	defer stop()
	lat := make([][]time.Duration, l.Conns)
	errs := make([]error, l.Conns)
	bodies := make([]int, l.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		n := l.Requests / l.Conns
		if i < l.Requests%l.Conns {
			n++
		}
		wg.Go(func() {
			lat[i], bodies[i], errs[i] = l.drive(c, n)
		})
	}
	wg.Wait()
	res := loadResult{Wall: time.Since(start), BodyBytes: bodies[0]}
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	for _, ls := range lat {
		res.Latencies = append(res.Latencies, ls...)
	}
	slices.Sort(res.Latencies)
	res.Requests = len(res.Latencies)
	return res, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// drive sends n requests on c, one after another.
func (l httpLoad) drive(c net.Conn, n int) ([]time.Duration, int, error) {
	lat := make([]time.Duration, 0, n)
	br := bufio.NewReaderSize(c, 16<<10)
	body := make([]byte, 0, 4096)
	for range n {
		t := time.Now()
		if _, err := c.Write(l.Request); err != nil {
			return lat, 0, fmt.Errorf("load: writing a request: %w", err)
		}
		status, b, err := readResponse(br, body[:0])
		if err != nil {
			return lat, 0, err
		}
		if status != 200 {
			return lat, 0, fmt.Errorf("load: status %d: %s", status, bytes.TrimSpace(b))
		}
		lat = append(lat, time.Since(t))
		body = b
	}
	return lat, len(body), nil
}

// readResponse reads one answer with a Content-Length and appends its body
// to buf.
func readResponse(br *bufio.Reader, buf []byte) (int, []byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, buf, fmt.Errorf("load: reading an answer: %w", err)
	}
	_, rest, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	status, err := strconv.Atoi(string(code))
	if err != nil {
		return 0, buf, fmt.Errorf("load: status line %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, buf, fmt.Errorf("load: reading headers: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		if strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, buf, fmt.Errorf("load: Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, buf, errors.New("load: an answer without Content-Length")
	}
	n := len(buf)
	buf = slices.Grow(buf, length)[:n+length]
	if _, err := io.ReadFull(br, buf[n:]); err != nil {
		return 0, buf, fmt.Errorf("load: reading a body: %w", err)
	}
	return status, buf, nil
}

// postRequest is a whole POST request with a bearer token and a JSON body.
func postRequest(addr, path, token, body string) []byte {
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, addr, token, len(body), body)
}
