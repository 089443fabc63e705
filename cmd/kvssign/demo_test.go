package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--timeout", "30s", "--pings", "2"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("kvssign demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"signed a ConnectAsViewer URL", `data channel "kvssign-demo" open`, `received "echo: ping 2": round trip`, "relayed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if m := regexp.MustCompile(`(?i)Signature=[0-9a-f]{64}`).FindString(text); m != "" {
		t.Errorf("output shows a signature: %s", m)
	}
}

func TestDemoUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--pings", "0"}, "--pings 0: must be from 1 to 1000"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout 0s: must be positive"},
		{[]string{"demo", "--client-id", "AWS_x"}, "--client-id: kvs: client id \"AWS_x\": must not start with AWS_"},
		{[]string{"demo", "--channel", "a b"}, "--channel: kvs: channel name \"a b\""},
		{[]string{"demo", "extra"}, "unknown command"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("kvssign %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestDemoTimeout(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--timeout", "1ns"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "demo: did not finish within 1ns") {
		t.Errorf("exit %d, stderr %q; want 1 and a timeout message", code, errOut.String())
	}
}
