package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRedisServer runs redis-server on a free loopback port until the
// test ends, or skips the test when it is not installed.
func startRedisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install -y redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "redis://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server does not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeRedis: --redis-url makes the copy use the Redis (readiness and
// metrics say so), and a bad URL is a usage error that does not show it.
func TestServeRedis(t *testing.T) {
	e := serveEnv(t)
	t.Setenv("KVSSIGN_REDIS_URL", "")
	if _, err := e.CreateChannel("demo", 0); err != nil {
		t.Fatal(err)
	}
	cfg := writeServeConfig(t, "")
	base, _, _, stop := startServe(t, "--config", cfg, "--addr", "127.0.0.1:0", "--endpoint-url", e.URL(), "--region", e.Region(), "--redis-url", startRedisServer(t))
	if status, body := vendPost(t, base, serveToken, `{"channel":"demo","role":"MASTER"}`); status != 200 {
		t.Fatalf("POST = %d %v", status, body)
	}
	for path, want := range map[string]string{"/readyz": `"redis":"ok"`, "/metrics": "kvssign_vend_redis_up 1"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", path, want)
		}
	}
	stop()

	var out, errOut syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"serve", "--config", cfg, "--redis-url", "http://user:hunter2-secret@127.0.0.1:1"}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "redis.url") || strings.Contains(errOut.String(), "hunter2") {
		t.Errorf("bad --redis-url: exit %d, stderr %q; want 2, naming redis.url without the password", code, errOut.String())
	}
}
