// kvssign demo --browser: the emulator and the vending service with the
// demo page, in this process, for a person to open in a browser.

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvssign/kvssign/awskvs"
	"github.com/kvssign/kvssign/emulator"
	"github.com/kvssign/kvssign/vend"
)

// AWS's documented example key pair: the emulator's default, public, and
// accepted nowhere but on this machine.
const (
	exampleAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	exampleSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// runBrowserDemo starts an emulator with the channel and a vending service
// that serves the demo page on addr, prints the master's and the viewer's
// page URLs, and serves until ctx is done. The bearer token in the URLs is
// made for this run and dies with it.
func runBrowserDemo(ctx context.Context, out io.Writer, addr, channel string) error {
	if serveWeb == nil {
		return usagef("--browser: this build has no embedded web page")
	}
	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		return err
	}
	if err := emu.Start(); err != nil {
		return fmt.Errorf("starting the emulator: %w", err)
	}
	defer emu.Close()
	if _, err := emu.CreateChannel(channel, 0); err != nil {
		return fmt.Errorf("creating channel %s: %w", channel, err)
	}

	var raw [24]byte
	rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	cfgJSON, err := json.Marshal(map[string]any{
		"addr":        addr,
		"region":      "us-west-2",
		"endpointUrl": emu.URL(),
		"auth":        map[string]any{"tokens": []any{map[string]string{"name": "demo", "sha256": vend.HashToken(token)}}},
		"rules":       []any{map[string]any{"principals": []string{"token:demo"}, "channels": []string{channel}, "roles": []string{"MASTER", "VIEWER"}}},
	})
	if err != nil {
		return err
	}
	cfg, err := vend.ParseConfig(cfgJSON)
	if err != nil {
		return err
	}
	awsCfg, err := awskvs.LoadConfig(ctx, awskvs.ConfigOptions{Region: cfg.Region, EndpointURL: cfg.EndpointURL},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(exampleAccessKeyID, exampleSecretAccessKey, "")))
	if err != nil {
		return err
	}
	resolver := awskvs.NewResolver(awsCfg)
	resolver.IncludeICEServers = true
	log := slog.New(slog.DiscardHandler)
	srv, err := vend.New(cfg, vend.Options{
		Backend:     vend.NewResolverBackend(resolver, nil),
		Credentials: resolver.Credentials,
		Logger:      log,
		Static:      http.FS(serveWeb),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usagef("--addr %s: %v", addr, err)
	}
	page := "http://" + ln.Addr().String() + "/"
	fragment := func(role string) string {
		return url.Values{"role": {role}, "channel": {channel}, "token": {token}, "autoconnect": {"1"}}.Encode()
	}
	fmt.Fprintf(out, `kvssign emulator on %s, vending service and demo page on %s

Open these two in two tabs (or two browsers on this machine):

  master: %s#%s
  viewer: %s#%s

The page holds no AWS credentials: it asks the vending service for a signed
URL with the token in the link, which is valid until you stop this (Ctrl-C).
`, emu.URL(), page, page, fragment("MASTER"), page, fragment("VIEWER"))
	return serveListener(ctx, ln, out, cfg, srv, log)
}
