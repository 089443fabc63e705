package vend_test

import (
	"fmt"
	"log"

	"github.com/kvssign/kvssign/sigv4"
	"github.com/kvssign/kvssign/vend"
)

// ExampleNewFleet wires a copy of the server to the Redis its fleet
// shares: the cache (Fleet.Backend), the rate limits (Options.Fleet) and,
// on the AWS HTTP client, the AWS call budget (BudgetUpstream). Here no
// Redis listens, so the copy starts on its own and keeps trying.
func ExampleNewFleet() {
	cfg, err := vend.ParseConfig([]byte(`{
	  "auth": {"tokens": [{"name": "cam", "sha256": "` + vend.HashToken("kvst_example-camera-token") + `"}]},
	  "rules": [{"principals": ["token:cam"], "channels": ["*"], "roles": ["MASTER"]}],
	  "redis": {"url": "redis://127.0.0.1:1", "copies": 4}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fleet, err := vend.NewFleet(cfg, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()
	// In kvssign serve: awsCfg.HTTPClient, err = vend.BudgetUpstream(registry, cfg, fleet, awsCfg.HTTPClient)
	srv, err := vend.New(cfg, vend.Options{
		Backend:     fleet.Backend(staticBackend{}, cfg.Cache),
		Credentials: sigv4.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
		Fleet:       fleet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	fmt.Println("sharing through Redis:", fleet.Up())
	// Output: sharing through Redis: false
}
