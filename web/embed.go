// Package web holds the kvssign browser demo page, built from web/src into
// web/dist by `npm run build` (web/build.mjs) and embedded here so that the
// kvssign binary serves it without npm or Node.js.
//
// The page holds no AWS credentials: it asks the vending API
// (POST /v1/connections, see package vend) on its own origin, or on an
// origin its kvssign-api-origins meta tag allows, for a signed signaling URL
// and ICE servers. docs/web.md describes it.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// FS is the built page: index.html, app.js and app.css at its root. Serve it
// with http.FileServerFS(web.FS).
var FS fs.FS = mustSub(dist, "dist")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("web: " + err.Error()) // dir is a constant that go:embed has checked
	}
	return sub
}
