package kvsapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/emulator/emulatortest"
	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

func TestClient(t *testing.T) {
	e := emulatortest.New(t, emulator.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var signed []string
	c := &Client{BaseURL: e.URL(), Region: e.Region(), Credentials: e.Credentials(),
		Sign: func(op, key string) { signed = append(signed, op+" "+key) }}
	arn, err := c.CreateChannel(ctx, "kvsapi")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []kvs.Role{kvs.Master, kvs.Viewer} {
		ep, err := c.Endpoint(ctx, arn, role)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ep, "/signaling/"+strings.ToLower(string(role))+"/") {
			t.Errorf("%s endpoint %q", role, ep)
		}
	}
	if len(signed) != 3 || signed[0] != "CreateSignalingChannel "+e.Credentials().AccessKeyID {
		t.Errorf("signed %q", signed)
	}

	cases := []struct {
		name   string
		call   func(*Client) error
		status int
		typ    string
	}{
		{"bad name", func(c *Client) error { _, err := c.CreateChannel(ctx, "a b"); return err }, 400, "InvalidArgumentException"},
		{"unknown channel", func(c *Client) error {
			_, err := c.Endpoint(ctx, "arn:aws:kinesisvideo:"+e.Region()+":"+e.Account()+":channel/nope/1", kvs.Viewer)
			return err
		}, 404, "ResourceNotFoundException"},
		{"wrong secret", func(c *Client) error {
			c.Credentials = sigv4.Credentials{AccessKeyID: e.Credentials().AccessKeyID, SecretAccessKey: "wrong"}
			_, err := c.CreateChannel(ctx, "x")
			return err
		}, 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := *c
			err := tc.call(&cc)
			var ae *Error
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || tc.typ != "" && ae.Type != tc.typ || ae.Message == "" {
				t.Errorf("error %#v; want HTTP %d %s with a message", err, tc.status, tc.typ)
			}
		})
	}
}
