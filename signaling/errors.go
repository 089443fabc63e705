package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kvssign/kvssign/kvs"
)

// Errors a Client reports.
var (
	// ErrClosed is returned by a Client's methods after Close.
	ErrClosed = errors.New("signaling: client closed")
	// ErrGoAway is the reason of an EventReconnected that followed the
	// service's GO_AWAY.
	ErrGoAway = errors.New("signaling: the service sent GO_AWAY")
	// ErrRenewed is the reason of an EventReconnected that the client made
	// before the service's idle timeout or maximum connection duration.
	ErrRenewed = errors.New("signaling: connection renewed before the service's limit")
)

// A GiveUpError is why a Client stopped reconnecting: Attempts attempts in a
// row failed (just one when the failure cannot heal, such as an unknown
// channel), the last with Last, a [*HandshakeError] when the service
// refused the upgrade. [Client.Err] returns it.
type GiveUpError struct {
	Attempts int
	Last     error
}

func (e *GiveUpError) Error() string {
	s := "s"
	if e.Attempts == 1 {
		s = ""
	}
	return fmt.Sprintf("signaling: gave up after %d attempt%s to reconnect: %v", e.Attempts, s, e.Last)
}

func (e *GiveUpError) Unwrap() error { return e.Last }

// A CloseError is a connection closed by the service with a WebSocket close
// frame: Code is its status (1000 normal, 1001 going away, 1011 internal
// error, ...) and Reason its text, which may be empty.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return "signaling: closed by the service: " + strconv.Itoa(e.Code)
	}
	return "signaling: closed by the service: " + strconv.Itoa(e.Code) + " " + e.Reason
}

// A RenewalError is the reason of an [EventReconnected] the client made
// ahead of a service limit; errors.Is matches it with ErrRenewed. Idle
// says which limit: the idle timeout (nothing sent for Elapsed) or the
// maximum connection duration (connected for Elapsed). Limit is the
// service's.
type RenewalError struct {
	Idle           bool
	Elapsed, Limit time.Duration
}

func (e *RenewalError) Error() string {
	if e.Idle {
		return fmt.Sprintf("%v: nothing sent for %v (service idle timeout %v)", ErrRenewed, e.Elapsed, e.Limit)
	}
	return fmt.Sprintf("%v: connected for %v (service limit %v)", ErrRenewed, e.Elapsed, e.Limit)
}

// Is reports whether target is ErrRenewed.
func (e *RenewalError) Is(target error) bool { return target == ErrRenewed }

// HandshakeError is a WebSocket upgrade the signaling service refused.
type HandshakeError struct {
	// StatusCode is the HTTP status: 400 bad parameters, invalid client id
	// or limits exceeded; 403 bad or expired signature or token, or no
	// permission; 404 unknown channel.
	StatusCode int
	// Type is the error code from the x-amzn-ErrorType header, such as
	// AccessDeniedException; empty if the service sent none.
	Type string
	// Message is the "message" (or "Message") of the JSON body, or the
	// body's text, clipped; empty if there was no body.
	Message string
	// Date is the service's Date header, for detecting clock skew (a
	// "Signature expired" or "Signature not yet current" message with a
	// Date far from the local clock). It is zero if the header was missing.
	Date time.Time
	// URL is the URL that was refused, with its signature and session
	// token redacted.
	URL string
}

func (e *HandshakeError) Error() string {
	var b strings.Builder
	b.WriteString("signaling: handshake refused: HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Type != "" {
		b.WriteString(" ")
		b.WriteString(e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.URL != "" {
		b.WriteString(" (")
		b.WriteString(e.URL)
		b.WriteString(")")
	}
	return b.String()
}

// retryable reports whether a refused handshake may succeed later. 401 and
// 403 count as retryable here; the caller bounds how often in a row.
func (e *HandshakeError) retryable() bool {
	switch {
	case e.StatusCode == http.StatusBadRequest:
		return e.Type == "ClientLimitExceededException" ||
			strings.Contains(e.Message, "Maximum number of clients")
	case e.StatusCode == http.StatusUnauthorized, e.StatusCode == http.StatusForbidden,
		e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return true
	}
	return false
}

// maxBody bounds what is read of a refusal's body.
const maxBody = 1024

// handshakeError builds a HandshakeError from a refusal. The websocket
// library has already read up to 1 KiB of the body into resp.Body.
func handshakeError(resp *http.Response, redactedURL string) *HandshakeError {
	e := &HandshakeError{StatusCode: resp.StatusCode, URL: redactedURL}
	if t := resp.Header.Get("x-amzn-ErrorType"); t != "" {
		e.Type, _, _ = strings.Cut(t, ":")
	}
	if d := resp.Header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			e.Date = t
		}
	}
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		e.Message = bodyMessage(body)
	}
	return e
}

// bodyMessage returns the message of a JSON error body ({"message":…} or
// {"Message":…}), or the body itself, trimmed and clipped.
func bodyMessage(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for k, v := range m {
			if s, ok := v.(string); ok && strings.EqualFold(k, "message") {
				return clip(s)
			}
		}
	}
	return clip(strings.TrimSpace(string(body)))
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// StatusError is the service's STATUS_RESPONSE to a message the client sent:
// the message was not delivered. The service sends one only for a message
// with a correlation id, which the typed sends always set (Client.Send
// sends the message's own, if any).
type StatusError struct {
	// Code is the HTTP-style status, e.g. 400; 0 if the service sent
	// something that is not a number.
	Code int
	// Type is the error type, e.g. InvalidArgumentException or
	// ClientLimitExceededException.
	Type string
	// Description is the service's explanation.
	Description string
	// CorrelationID identifies the message: the typed sends set
	// "offer-N", "answer-N" or "candidate-N", N counting from 1 per
	// Client, so the kind of message can be read from it; for a message
	// sent with Client.Send it is the message's own.
	CorrelationID string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("signaling: message %s refused: %d", e.CorrelationID, e.Code)
	if e.Type != "" {
		msg += " " + e.Type
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

func statusError(s *kvs.StatusResponse) *StatusError {
	if s == nil {
		return &StatusError{Description: "STATUS_RESPONSE without a statusResponse"}
	}
	code, _ := strconv.Atoi(s.StatusCode)
	return &StatusError{Code: code, Type: s.ErrorType, Description: s.Description, CorrelationID: s.CorrelationID}
}
