package sigv4

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Credentials are AWS security credentials.
//
// Their String and GoString methods redact the secret key and the session
// token, so printing a Credentials value never leaks them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials (from STS); empty for
	// long-term keys.
	SessionToken string
	// Expires is when temporary credentials stop working. The zero value
	// means they do not expire.
	Expires time.Time
}

// Retrieve returns c itself, so a Credentials value is a static
// [CredentialsProvider].
func (c Credentials) Retrieve(context.Context) (Credentials, error) { return c, nil }

// Validate reports whether c can sign: both keys must be present.
func (c Credentials) Validate() error {
	switch {
	case c.AccessKeyID == "":
		return errors.New("sigv4: credentials: access key id is empty")
	case c.SecretAccessKey == "":
		return errors.New("sigv4: credentials: secret access key is empty")
	}
	return nil
}

// ExpiresWithin reports whether c expires before now+d. Credentials without
// an expiry never do.
func (c Credentials) ExpiresWithin(now time.Time, d time.Duration) bool {
	return !c.Expires.IsZero() && !c.Expires.After(now.Add(d))
}

// String describes c without its secrets.
func (c Credentials) String() string {
	s := fmt.Sprintf("{AccessKeyID:%s SecretAccessKey:%s", c.AccessKeyID, redact(c.SecretAccessKey))
	if c.SessionToken != "" {
		s += " SessionToken:" + redact(c.SessionToken)
	}
	if !c.Expires.IsZero() {
		s += " Expires:" + c.Expires.UTC().Format(time.RFC3339)
	}
	return s + "}"
}

// GoString is String, so %#v redacts too.
func (c Credentials) GoString() string { return "sigv4.Credentials" + c.String() }

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// A CredentialsProvider supplies credentials for signing. Implementations
// must be safe for concurrent use; they may cache and renew.
type CredentialsProvider interface {
	Retrieve(ctx context.Context) (Credentials, error)
}

// CredentialsFunc adapts a function to a [CredentialsProvider].
type CredentialsFunc func(ctx context.Context) (Credentials, error)

// Retrieve calls f(ctx).
func (f CredentialsFunc) Retrieve(ctx context.Context) (Credentials, error) { return f(ctx) }
