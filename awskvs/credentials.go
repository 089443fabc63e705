package awskvs

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// DefaultCredentialsWindow is how long before their expiry [Credentials]
// renews temporary credentials when given no window: the longest a
// signaling URL stays usable (KVS refuses it [kvs.UseWithin] after its
// signing time, whatever its X-Amz-Expires) plus a minute, so a URL never
// outlives the credentials that signed it.
const DefaultCredentialsWindow = kvs.UseWithin + time.Minute

// Credentials adapts an aws-sdk-go-v2 credentials provider (the standard
// chain, a profile, an assumed role…) to a [sigv4.CredentialsProvider].
//
// Credentials are cached, and renewed once they would expire within window
// (if zero, [DefaultCredentialsWindow]); window must be at least the
// lifetime of what is signed with them. When p is an *aws.CredentialsCache
// it is used as the cache (and invalidated to renew); otherwise p is wrapped
// in one. Concurrent callers share one renewal. If p's credentials cannot
// last window even when new (a role session shorter than the window), they
// are renewed only when the cache finds them expired, and signers refuse
// them with an error that says so.
func Credentials(p aws.CredentialsProvider, window time.Duration) sigv4.CredentialsProvider {
	c, ok := p.(*aws.CredentialsCache)
	if !ok {
		c = aws.NewCredentialsCache(p)
	}
	if window <= 0 {
		window = DefaultCredentialsWindow
	}
	return &credentials{cache: c, window: window, now: time.Now, renew: make(chan struct{}, 1)}
}

type credentials struct {
	cache  *aws.CredentialsCache
	window time.Duration
	now    func() time.Time
	renew  chan struct{} // a lock that waits with a context

	// Guarded by renew: the key of credentials that came short-lived right
	// after a renewal, so that they are not renewed on every call.
	short string
}

func (c *credentials) fresh(ac aws.Credentials) bool {
	return !ac.CanExpire || ac.Expires.After(c.now().Add(c.window))
}

// Retrieve returns credentials that last at least the window, renewing
// them when needed.
func (c *credentials) Retrieve(ctx context.Context) (sigv4.Credentials, error) {
	ac, err := c.cache.Retrieve(ctx)
	if err != nil {
		return sigv4.Credentials{}, fmt.Errorf("awskvs: retrieving credentials: %w", err)
	}
	if c.fresh(ac) {
		return convert(ac), nil
	}
	select {
	case c.renew <- struct{}{}:
	case <-ctx.Done():
		return sigv4.Credentials{}, fmt.Errorf("awskvs: retrieving credentials: %w", ctx.Err())
	}
	defer func() { <-c.renew }()
	// Another caller may have renewed them while this one waited.
	if ac, err = c.cache.Retrieve(ctx); err != nil {
		return sigv4.Credentials{}, fmt.Errorf("awskvs: retrieving credentials: %w", err)
	}
	if c.fresh(ac) || ac.AccessKeyID == c.short {
		return convert(ac), nil
	}
	c.cache.Invalidate()
	if ac, err = c.cache.Retrieve(ctx); err != nil {
		return sigv4.Credentials{}, fmt.Errorf("awskvs: renewing credentials: %w", err)
	}
	if !c.fresh(ac) {
		c.short = ac.AccessKeyID
	}
	return convert(ac), nil
}

func convert(ac aws.Credentials) sigv4.Credentials {
	c := sigv4.Credentials{AccessKeyID: ac.AccessKeyID, SecretAccessKey: ac.SecretAccessKey, SessionToken: ac.SessionToken}
	if ac.CanExpire {
		c.Expires = ac.Expires
	}
	return c
}
