// Package sigv4 implements AWS Signature Version 4 with the standard library
// only: presigning a URL for any service (query authentication), signing an
// HTTP request's headers, and verifying both on the server side.
//
// A [Signer] produces exactly what AWS's own signers produce for the same
// inputs: RFC 3986 encoding (a space is %20, "~" stays as is), a canonical
// query sorted by encoded name and value, the host header as the client sends
// it (with a non-default port), and the session token inside the signed query
// unless [Signer.TokenAfterSigning] asks for the AWS IoT style.
//
// To presign the same URL again and again — one KVS channel for many
// viewers, say — make a [Template] once with [Signer.NewTemplate]: the
// request is checked, escaped and sorted when it is made, parameters named
// open (a client id) get their values per URL, and signing starts from
// saved SHA-256 states, so a URL costs about a microsecond and a half and
// one allocation.
//
// A [Verifier] checks a presigned URL or a header-signed request against a key
// lookup and reports why it failed with an [*Error] that errors.Is matches
// against [ErrMissingAuth], [ErrMalformed], [ErrUnknownAccessKey], [ErrExpired],
// [ErrNotYetValid], [ErrSignatureMismatch], [ErrInvalidToken],
// [ErrExpiredToken] and [ErrWrongScope].
//
// Query values are decoded exactly once: a caller's already-encoded value is
// not encoded twice, and "+" in a query is read as a space, as AWS services
// and aws-sdk-go-v2 read it. [Redact] hides the secrets of a signed URL,
// header or trace in any text. docs/signing.md in the repository says more
// about the caches, the clock and what a verifier checks.
package sigv4
