package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/internal/kvsapi"
	"github.com/kvssign/kvssign/kvs"
)

func TestRun(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := &kvsapi.Client{BaseURL: e.URL(), Region: e.Region(), Credentials: e.Credentials()}
	arn, err := api.CreateChannel(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	viewerEP, err := api.Endpoint(ctx, arn, kvs.Viewer)
	if err != nil {
		t.Fatal(err)
	}
	masterEP, err := api.Endpoint(ctx, arn, kvs.Master)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cfg     config
		want    []string
		wantErr bool
	}{
		{"viewer", config{Endpoint: viewerEP, ChannelARN: arn, Role: kvs.Viewer, ClientID: "viewer-1", Creds: e.Credentials()},
			[]string{"X-Amz-ClientId=viewer-1", "X-Amz-Signature=REDACTED", "handshake accepted: HTTP 101 Switching Protocols; connected as VIEWER"}, false},
		{"master", config{Endpoint: masterEP, ChannelARN: arn, Role: kvs.Master, Creds: e.Credentials()},
			[]string{"handshake accepted: HTTP 101 Switching Protocols; connected as MASTER"}, false},
		{"unknown channel", config{Endpoint: viewerEP, ChannelARN: strings.Replace(arn, "simple", "nope", 1), Role: kvs.Viewer, ClientID: "viewer-1", Creds: e.Credentials()},
			[]string{"handshake refused: HTTP 404 ResourceNotFoundException", "hint: check the channel ARN"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, tc.cfg, &out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if regexp.MustCompile(`Signature=[0-9a-f]{64}`).MatchString(out.String()) {
				t.Errorf("output shows a signature:\n%s", out.String())
			}
		})
	}
}
