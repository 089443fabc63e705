// Credentials scoped to one channel and one role, from STS AssumeRole with
// a session policy, cached for their lifetime.

package vend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/kvssign/kvssign/kvs"
	"github.com/kvssign/kvssign/sigv4"
)

// assumeRoleAPI is the STS call an [STSScoper] makes; *sts.Client has it.
type assumeRoleAPI interface {
	AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error)
}

// STSScoper is a [Scoper] that assumes a role with a session policy
// allowing only kinesisvideo:ConnectAsMaster or ConnectAsViewer on one
// channel ARN. Even if a vended URL's credentials leaked from the
// signature's scope, they could do nothing else. Credentials are cached per
// channel and role, renewed in the background before they would expire
// within a URL's lifetime, and fetched once for all concurrent callers.
type STSScoper struct {
	client      assumeRoleAPI
	roleARN     string
	sessionName string
	externalID  string
	duration    time.Duration
	urlExpires  time.Duration
	clock       func() time.Time

	// ctx ends the fetches when the scoper closes; wg counts them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	m  map[scopeKey]*scoped
}

type scopeKey struct {
	arn  string
	role kvs.Role
}

type scoped struct {
	creds    sigv4.Credentials
	flight   chan struct{} // closed when the fetch under way ends; nil if none
	err      error         // the last fetch's error
	failedAt time.Time
}

const (
	scopedTimeout     = 10 * time.Second
	scopedMaxEntries  = 10000
	scopedFailBackoff = time.Second // how long a failure is answered without asking STS again
)

// NewSTSScoper returns an [STSScoper] that calls client (an *sts.Client) as
// configured by c.
// urlExpires is the lifetime of the URLs signed with the credentials; clock
// may be nil for time.Now.
func NewSTSScoper(client assumeRoleAPI, c ScopedCredentials, urlExpires time.Duration, clock func() time.Time) *STSScoper {
	s := &STSScoper{
		client: client, roleARN: c.RoleARN, sessionName: c.SessionName, externalID: c.ExternalID,
		duration: orDuration(c.Duration, 15*time.Minute), urlExpires: urlExpires, clock: clock,
		m: make(map[scopeKey]*scoped),
	}
	if s.sessionName == "" {
		s.sessionName = "kvssign-vend"
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.urlExpires == 0 {
		s.urlExpires = kvs.DefaultExpires
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the STS calls under way and waits for them to end; after it,
// ScopedCredentials fails for credentials it does not hold.
func (s *STSScoper) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// ScopedCredentials returns credentials allowed only to connect to
// channelARN as role, valid for at least a URL's lifetime.
func (s *STSScoper) ScopedCredentials(ctx context.Context, channelARN string, role kvs.Role) (sigv4.Credentials, error) {
	k := scopeKey{channelARN, role}
	now := s.clock()
	s.mu.Lock()
	e := s.m[k]
	if e == nil {
		if len(s.m) >= scopedMaxEntries {
			s.evict(now)
		}
		e = &scoped{}
		s.m[k] = e
	}
	usable := s.usable(e.creds, now)
	if usable && !s.renewDue(e.creds, now) {
		c := e.creds
		s.mu.Unlock()
		return c, nil
	}
	if !usable && e.flight == nil && e.err != nil && now.Sub(e.failedAt) < scopedFailBackoff {
		err := e.err
		s.mu.Unlock()
		return sigv4.Credentials{}, err
	}
	if e.flight == nil {
		if err := s.ctx.Err(); err != nil {
			s.mu.Unlock()
			return sigv4.Credentials{}, fmt.Errorf("vend: scoped credentials: the scoper is closed: %w", err)
		}
		e.flight = make(chan struct{})
		s.wg.Add(1)
		go s.fetch(k, e, e.flight)
	}
	done := e.flight
	c := e.creds
	s.mu.Unlock()
	if usable {
		return c, nil // renewed in the background
	}
	select {
	case <-done:
	case <-ctx.Done():
		return sigv4.Credentials{}, fmt.Errorf("vend: scoped credentials: %w", ctx.Err())
	}
	s.mu.Lock()
	c, err := e.creds, e.err
	s.mu.Unlock()
	if s.usable(c, s.clock()) {
		return c, nil
	}
	if err == nil {
		err = errors.New("vend: scoped credentials: STS returned credentials that expire too soon")
	}
	return sigv4.Credentials{}, err
}

// usable reports whether c can sign a URL now: it outlives the URL.
func (s *STSScoper) usable(c sigv4.Credentials, now time.Time) bool {
	return c.AccessKeyID != "" && !c.ExpiresWithin(now, s.urlExpires+10*time.Second)
}

// renewDue reports whether c should be renewed: less than a URL's lifetime
// and five minutes are left (or a third of the duration, if less).
func (s *STSScoper) renewDue(c sigv4.Credentials, now time.Time) bool {
	return c.ExpiresWithin(now, s.urlExpires+min(5*time.Minute, s.duration/3))
}

func (s *STSScoper) fetch(k scopeKey, e *scoped, done chan struct{}) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, scopedTimeout)
	defer cancel()
	c, err := s.assume(ctx, k)
	s.mu.Lock()
	if err == nil {
		e.creds, e.err = c, nil
	} else {
		e.err, e.failedAt = err, s.clock()
	}
	e.flight = nil
	s.mu.Unlock()
	close(done)
}

func (s *STSScoper) assume(ctx context.Context, k scopeKey) (sigv4.Credentials, error) {
	action := "kinesisvideo:ConnectAsViewer"
	if k.role == kvs.Master {
		action = "kinesisvideo:ConnectAsMaster"
	}
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]string{{
			"Effect":   "Allow",
			"Action":   action,
			"Resource": k.arn,
		}},
	})
	if err != nil {
		return sigv4.Credentials{}, err
	}
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(s.roleARN),
		RoleSessionName: aws.String(s.sessionName),
		DurationSeconds: aws.Int32(int32(s.duration / time.Second)),
		Policy:          aws.String(string(policy)),
	}
	if s.externalID != "" {
		in.ExternalId = aws.String(s.externalID)
	}
	out, err := s.client.AssumeRole(ctx, in)
	if err != nil {
		return sigv4.Credentials{}, fmt.Errorf("vend: scoped credentials: %w", classifyAWSError(err))
	}
	if out.Credentials == nil || out.Credentials.AccessKeyId == nil || out.Credentials.SecretAccessKey == nil {
		return sigv4.Credentials{}, errors.New("vend: scoped credentials: STS returned no credentials")
	}
	c := sigv4.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
	if out.Credentials.Expiration != nil {
		c.Expires = *out.Credentials.Expiration
	}
	return c, nil
}

// evict drops entries whose credentials expired and that are not being
// fetched; if that is not enough, any idle entries.
func (s *STSScoper) evict(now time.Time) {
	for k, e := range s.m {
		if e.flight == nil && !s.usable(e.creds, now) {
			delete(s.m, k)
		}
	}
	for k, e := range s.m {
		if len(s.m) < scopedMaxEntries {
			break
		}
		if e.flight == nil {
			delete(s.m, k)
		}
	}
}

// classifyAWSError wraps err with [ErrUnavailable] when retrying later may
// help: throttling, a 5xx, a timeout or a network failure.
func classifyAWSError(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		if code := se.HTTPStatusCode(); code >= 500 || code == 429 {
			return unavailable{err}
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
			"TooManyRequestsException", "ClientLimitExceededException", "ServiceUnavailable",
			"ServiceUnavailableException", "InternalFailure", "InternalError", "InternalServerError", "RequestTimeout":
			return unavailable{err}
		}
		return err // the service answered, and said no
	}
	if se != nil {
		return err
	}
	var ce *smithy.CanceledError
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) {
		return err
	}
	// No HTTP response: a timeout, a refused connection, DNS.
	return unavailable{err}
}

// unavailable marks an error as [ErrUnavailable] and keeps its cause.
type unavailable struct{ err error }

func (u unavailable) Error() string { return u.err.Error() }
func (u unavailable) Unwrap() []error {
	return []error{ErrUnavailable, u.err}
}
