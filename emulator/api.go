// Errors and responses in the shapes AWS uses: REST-JSON for kinesisvideo
// (x-amzn-ErrorType + {"Message":…}) and Query/XML for STS.

package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kvssign/kvssign/sigv4"
)

// apiError is an error as a service reports it.
type apiError struct {
	Status  int
	Code    string // e.g. ResourceNotFoundException
	Message string
	// lowerKey writes the message as "message" (SigV4 and signaling
	// failures) rather than "Message" (modeled exceptions).
	lowerKey bool
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalidArg(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "InvalidArgumentException", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errf(http.StatusNotFound, "ResourceNotFoundException", format, args...)
}

// validationMessage words a failed constraint the way AWS's services do,
// naming the field and the rule.
func validationMessage(value, field, rule string) string {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, rule)
}

// newRequestID returns a random id shaped like AWS's request ids.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const errorTypeSuffix = ":http://internal.amazon.com/coral/com.amazonaws.kinesisvideo.v20170930/"

// setCommonHeaders sets the headers every response carries.
func (e *Emulator) setCommonHeaders(w http.ResponseWriter) string {
	id := newRequestID()
	h := w.Header()
	h.Set("x-amzn-RequestId", id)
	h.Set("Date", e.now().UTC().Format(http.TimeFormat))
	return id
}

// writeJSON writes a successful REST-JSON response.
func (e *Emulator) writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.writeJSONError(w, errf(http.StatusInternalServerError, "InternalFailure", "could not encode the response"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// writeJSONError writes err as a REST-JSON error; any error that is not an
// *apiError becomes a 500 without detail.
func (e *Emulator) writeJSONError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		e.log.Error("internal error", "err", err)
		ae = errf(http.StatusInternalServerError, "InternalFailure", "We encountered an internal error. Please try again.")
	}
	key := "Message"
	if ae.lowerKey {
		key = "message"
	}
	b, _ := json.Marshal(map[string]string{key: ae.Message})
	h := w.Header()
	h.Set("x-amzn-ErrorType", ae.Code+errorTypeSuffix)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(ae.Status)
	w.Write(b)
}

// authError maps a SigV4 verification failure to what a REST-JSON AWS
// service answers: 403 with the code clients switch on.
func authError(err error) *apiError {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return nil
	}
	code := "InvalidSignatureException"
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		code = "MissingAuthenticationTokenException"
	case errors.Is(err, sigv4.ErrMalformed):
		code = "IncompleteSignatureException"
	case errors.Is(err, sigv4.ErrUnknownAccessKey), errors.Is(err, sigv4.ErrInvalidToken):
		code = "UnrecognizedClientException"
	case errors.Is(err, sigv4.ErrExpiredToken):
		code = "ExpiredTokenException"
	}
	return &apiError{Status: http.StatusForbidden, Code: code, Message: se.Message, lowerKey: true}
}

// stsAuthError maps a SigV4 failure to STS's codes.
func stsAuthError(err error) *apiError {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return nil
	}
	code, status := "SignatureDoesNotMatch", http.StatusForbidden
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		code = "MissingAuthenticationToken"
	case errors.Is(err, sigv4.ErrMalformed):
		code, status = "IncompleteSignature", http.StatusBadRequest
	case errors.Is(err, sigv4.ErrUnknownAccessKey), errors.Is(err, sigv4.ErrInvalidToken):
		code = "InvalidClientTokenId"
	case errors.Is(err, sigv4.ErrExpiredToken):
		code = "ExpiredToken"
	}
	return &apiError{Status: status, Code: code, Message: se.Message}
}

type xmlError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// writeXMLError writes err as a Query-protocol error.
func (e *Emulator) writeXMLError(w http.ResponseWriter, requestID string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		e.log.Error("internal error", "err", err)
		ae = errf(http.StatusInternalServerError, "InternalFailure", "We encountered an internal error. Please try again.")
	}
	typ := "Sender"
	if ae.Status >= 500 {
		typ = "Receiver"
	}
	b, _ := xml.Marshal(xmlError{Xmlns: stsNamespace, Type: typ, Code: ae.Code, Message: ae.Message, RequestID: requestID})
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(ae.Status)
	w.Write(b)
}

// writeXML writes a successful Query-protocol response.
func (e *Emulator) writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		e.writeXMLError(w, "", err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
