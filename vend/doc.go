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
// says what went wrong (bad input names the field and the rule; 429 and 503
// come with Retry-After). Internals never appear in a response, and no
// signed URL, signature, credential or bearer token in a log line.
//
// Run copies behind a load balancer, alone or sharing a cache, rate limits
// and an AWS call budget through Redis ([Fleet]), or as a Lambda function
// ([Server.HandleLambda]); docs/vend.md and docs/deploy.md describe them.
package vend
