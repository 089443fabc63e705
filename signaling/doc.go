// Package signaling is a client for Amazon Kinesis Video Streams WebRTC
// signaling: it connects to a signaling channel over a presigned WebSocket
// URL, sends SDP offers, answers and ICE candidates, and delivers what the
// service sends as typed events.
//
// A [Client] keeps its connection alive for as long as the caller needs it.
// The service caps a connection at one hour, closes it after ten minutes
// without a message from the client, and sends GO_AWAY before closing it; a
// signed URL lives five minutes. So a Client never reuses a URL: it asks its
// [URLSource] for a freshly signed one for every connection, and reconnects
// on its own, with backoff and jitter, when the connection drops, when the
// service sends GO_AWAY, and shortly before the idle and duration limits.
// The caller sees an [EventReconnected] and nothing else: messages sent while
// the client is reconnecting wait for the new connection, and messages sent
// to it meanwhile are held by the service.
//
// # Reconnection policy
//
// [Dial] makes one attempt and returns its error, so a caller learns at once
// what is wrong; the one exception is clock skew (below). After that the
// client reconnects by itself:
//
//   - GO_AWAY and the client's own renewals: the new connection is made
//     before the old one is closed (the service replaces a master or a
//     viewer's older connection with a newer one), so nothing is lost.
//   - A dropped connection, a close by the service, or no pong to a ping
//     within Options.PongTimeout: the client reconnects after a short
//     random delay, then with exponential backoff and jitter between
//     Options.MinBackoff and Options.MaxBackoff.
//   - A refused handshake is retried only when it may heal:
//     ClientLimitExceededException (400: throttled, or the channel is
//     full), 408, 429 and 5xx are retried; 401 and 403 are retried with a
//     freshly signed URL at most three times in a row, in case credentials
//     were being renewed; any other 4xx (400 invalid parameters or client
//     id, 404 unknown channel) ends the client at once.
//   - A 403 for clock skew that corrected the URL source's clock (see
//     below) is retried at once and does not count among those three.
//   - Network errors, timeouts and failures of the URLSource are retried.
//
// At most Options.MaxAttempts failed attempts are made in a row; then the
// client ends, [Client.Events] is closed and [Client.Err] says why. A
// refused handshake is reported as a [*HandshakeError] with the HTTP status
// and the service's message.
//
// # Clock skew
//
// A device clock more than five minutes off gets its URLs refused with 403
// "Signature expired" or "Signature not yet current". A [URLSource] made by
// [Presigned] corrects for it: on such a 403 (or any 403 whose Date header
// is more than four minutes from the signing clock), the client learns the
// service's time from the Date header into the source's [kvs.ClockSkew]
// (the Presigner's Skew, or one of the source's own), reports an
// [EventClockSkew] whose Skew is the learned offset, and signs the next URL
// with the corrected time. Dial then makes a second attempt, at once; a
// reconnection retries at once. Skews of two seconds or less, within the
// Date header's resolution, are ignored. Other URL sources are left alone.
//
// # Pacing
//
// KVS allows 5 SDP offers, 5 SDP answers and 20 ICE candidates per second on
// a connection and drops the excess. The send methods wait, a little under
// those rates, until a message may go, so that a burst of candidates is
// delivered rather than refused.
//
// The package does not import a WebRTC stack. [kvs.SessionDescription] and
// [kvs.ICECandidate] have the JSON of the browser's RTCSessionDescriptionInit
// and RTCIceCandidateInit; pion's ICECandidateInit converts to
// kvs.ICECandidate directly.
package signaling
