// Package vend is an HTTP service that hands clients a short-lived signed
// URL for a Kinesis Video Streams signaling channel, with the channel's ICE
// servers, so that browsers, apps and devices never hold AWS credentials.
//
// A [Server] authenticates each caller (static bearer tokens stored as
// SHA-256 hashes, or JWTs checked against a JWKS), authorises the channel
// and role from the configured [Rule]s, binds a viewer's client id to the
// caller's identity, rate-limits per caller and per client address, and
// answers from a [Backend] that caches what it resolves, so that no AWS
// call is made per request once the cache is warm.
//
// The API:
//
//	POST /v1/connections   {"channel":"…","role":"VIEWER","clientId":"…"} → a signed URL and ICE servers
//	GET  /healthz          the process is up
//	GET  /readyz           the server takes traffic (503 while draining)
//	GET  /metrics          Prometheus metrics
//
// Errors are JSON, {"error":{"code":"…","message":"…"}}, with a status that
// says what went wrong: 400 bad input (the message names the field and the
// rule), 401 no or bad credentials, 403 not allowed, 404 no such channel,
// 413 body too large, 429 over a rate limit (with Retry-After), 503 AWS
// unavailable and nothing cached (with Retry-After). Internals never appear
// in a response, and no signed URL, signature, credential or bearer token
// appears in a log line.
//
// The server is stateless: run as many copies as needed behind a load
// balancer, or as an AWS Lambda function behind API Gateway with
// [Server.HandleLambda]. docs/vend.md describes the configuration.
package vend
