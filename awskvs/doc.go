// Package awskvs is the AWS side of kvssign, on aws-sdk-go-v2: credentials
// from the standard chain (or an assumed role) adapted to the sigv4
// package, and a [Resolver] that turns a signaling channel's name into its
// ARN, endpoints per role and ICE servers, signs URLs for it, and manages
// channels.
//
// A Resolver is built to sit in a long-running server as well as a
// one-shot command: KVS's control-plane quotas are per account (a few TPS
// per channel for DescribeSignalingChannel and GetIceServerConfig), so it
// caches ARNs and endpoints for hours and ICE servers until their Ttl less
// a margin, makes one call for any number of concurrent misses, retries
// throttling and 5xx with backoff and jitter, bounds every call with a
// deadline, and serves what it knew for a while when the service fails.
//
// Errors are [*Error] values: errors.Is matches [ErrNotFound],
// [ErrAccessDenied], [ErrThrottled] and [ErrInvalidArgument], and errors.As
// still reaches the SDK's smithy.APIError.
//
// GetIceServerConfig is sent as one SigV4-signed JSON POST to the channel's
// HTTPS endpoint, signed with the sigv4 package.
//
// For WebRTC ingestion the Resolver also manages streams and channels'
// media storage, finds the WEBRTC endpoint and joins storage sessions
// (JoinStorageSession, likewise one signed POST); a [StorageJoiner] keeps
// a master joined. See docs/ingestion.md.
package awskvs
