// Package signaling is a client for Amazon Kinesis Video Streams WebRTC
// signaling: it connects to a signaling channel over a presigned WebSocket
// URL, sends SDP offers, answers and ICE candidates, and delivers what the
// service sends as typed events.
//
// A [Client] keeps its connection alive: it asks its [URLSource] for a
// freshly signed URL for every connection and reconnects on its own, with
// backoff and jitter, when the connection drops, when the service sends
// GO_AWAY, and shortly before the service's idle and one-hour limits. The
// caller sees an [EventReconnected]; sends wait for the new connection. A
// URL refused for clock skew teaches a [Presigned] source the service's
// time. Refusals that cannot heal end the client at once; others are
// retried up to Options.MaxAttempts times, and then [Client.Err] is a
// [*GiveUpError]. With Options.NoReconnect the client keeps to the one
// connection Dial makes. The send methods pace messages under the
// service's per-connection rates.
//
// The retry policy, the events and the options in full, and how to use
// the client with pion, are in docs/signaling.md.
package signaling
