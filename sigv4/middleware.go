// An HTTP middleware that admits only correctly signed requests, as API
// Gateway's IAM authorization does.

package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// MaxSignedBody is the largest request body [RequireSignature] reads to
// check its hash: API Gateway's payload limit.
const MaxSignedBody = 10 << 20

type resultKey struct{}

// ResultFromContext returns the verification result [RequireSignature]
// stored in a request's context: who signed it, for which region and
// service, and when.
func ResultFromContext(ctx context.Context) (*Result, bool) {
	r, ok := ctx.Value(resultKey{}).(*Result)
	return r, ok
}

// RequireSignature returns a handler that passes to next only the requests
// v verifies: signed with the Authorization header, or presigned (query
// authentication, when the query has X-Amz-Signature). next finds the
// [*Result] with [ResultFromContext] and can still read the body.
//
// Other requests get what API Gateway answers: 403 with a JSON body
// {"message": …} and an x-amzn-ErrorType header (a missing signature is
// MissingAuthenticationTokenException, a malformed one
// IncompleteSignatureException, an unknown key or token
// UnrecognizedClientException, an expired token ExpiredTokenException,
// anything else InvalidSignatureException), 413 for a body over
// [MaxSignedBody], and 500 without detail when v.Lookup fails otherwise.
// The messages never hold a secret or a signature.
func RequireSignature(v *Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res *Result
		var err error
		if presigned(r) {
			res, err = v.VerifyPresigned(r.Context(), r)
		} else {
			res, err = verifyHeaders(v, w, r)
		}
		if err != nil {
			writeAuthError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resultKey{}, res)))
	})
}

// verifyHeaders checks a request signed with the Authorization header. It
// hashes the body itself, so a body that differs from a signed
// X-Amz-Content-Sha256 is refused rather than trusted, and it reads the
// body only once the request claims to be signed.
func verifyHeaders(v *Verifier, w http.ResponseWriter, r *http.Request) (*Result, error) {
	if r.Header.Get("Authorization") == "" {
		return nil, verr(ErrMissingAuth, "Missing Authentication Token")
	}
	hash := EmptyPayloadHash
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSignedBody))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return nil, verr(ErrSignatureMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return v.VerifyRequest(r.Context(), r, hash)
}

// presigned reports whether r carries query authentication.
func presigned(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return false
	}
	q, err := ParseQuery(r.URL.RawQuery)
	if err != nil {
		return true // let VerifyPresigned word the error
	}
	for _, p := range q {
		if p.Name == ParamSignature || p.Name == ParamAlgorithm {
			return true
		}
	}
	return false
}

func writeAuthError(w http.ResponseWriter, err error) {
	status, code, msg := http.StatusForbidden, "", ""
	var se *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		status, code, msg = http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			"Request Too Long: the body is over "+strconv.Itoa(MaxSignedBody)+" bytes"
	case errors.As(err, &se):
		msg = se.Message
		switch {
		case errors.Is(err, ErrMissingAuth):
			code = "MissingAuthenticationTokenException"
		case errors.Is(err, ErrMalformed):
			code = "IncompleteSignatureException"
		case errors.Is(err, ErrUnknownAccessKey), errors.Is(err, ErrInvalidToken):
			code = "UnrecognizedClientException"
		case errors.Is(err, ErrExpiredToken):
			code = "ExpiredTokenException"
		default:
			code = "InvalidSignatureException"
		}
	default:
		// A failing key lookup or body read: say nothing about it.
		status, code, msg = http.StatusInternalServerError, "InternalServerErrorException", "Internal server error"
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("x-amzn-ErrorType", code)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
