package main

import "github.com/kvssign/kvssign/web"

// The browser demo page, built into web/dist, is what `serve --web` serves.
func init() { serveWeb = web.FS }
