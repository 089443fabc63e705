package vend_test

import (
	"fmt"
	"log"

	"github.com/kvssign/kvssign/sigv4"
	"github.com/kvssign/kvssign/vend"
)

// ExampleNewFleet wires a copy of the server to the Redis its fleet shares:
// the cache (NewFleetBackend), the rate limits (Options.Fleet) and the AWS
// call budget (NewBudget and BudgetUpstream, on the AWS HTTP client). Here
// no Redis listens, so the copy starts on its own and keeps trying.
func ExampleNewFleet() {
	fleet, err := vend.NewFleet(vend.Redis{URL: "redis://127.0.0.1:1", Copies: 4}, vend.FleetOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer fleet.Close()
	budget := vend.NewBudget(vend.AWSBudget{}, fleet)
	_ = budget // vend.BudgetUpstream(registry, budget, awsConfig.HTTPClient)

	cfg, err := vend.ParseConfig([]byte(`{
	  "auth": {"tokens": [{"name": "cam", "sha256": "` + vend.HashToken("kvst_example-camera-token") + `"}]},
	  "rules": [{"principals": ["token:cam"], "channels": ["*"], "roles": ["MASTER"]}]
	}`))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := vend.New(cfg, vend.Options{
		Backend:     vend.NewFleetBackend(fleet, staticBackend{}, cfg.Cache, nil),
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
