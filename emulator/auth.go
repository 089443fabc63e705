// Credentials the emulator accepts, and rate limiting.

package emulator

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/kvssign/kvssign/sigv4"
)

// credKind says where accepted credentials came from.
type credKind int

const (
	credLongTerm credKind = iota
	credSession           // GetSessionToken
	credRole              // AssumeRole
)

type issued struct {
	creds sigv4.Credentials
	kind  credKind
	arn   string // the caller identity's ARN
	// grant holds the policies that must all allow a request made with
	// these credentials: the identity policy, if configured, and an
	// AssumeRole session policy. Empty: everything is allowed.
	grant grant
	// vars are the policy variables these credentials resolve, keys
	// lower-cased (credentials-iot:thingname, aws:userid…); nil if none.
	vars map[string]string
	// scoped: an AssumeRole session policy limits these credentials, so
	// they may call AssumeRole only where their grant allows
	// sts:AssumeRole (otherwise chaining would shed the session policy).
	scoped bool
}

// credStore holds the configured key and the temporary credentials STS
// issued. Expired ones are kept for a day so that their use gets
// ExpiredToken rather than "invalid".
type credStore struct {
	mu   sync.RWMutex
	keys map[string]issued
}

// longTermUser is the name of the IAM user the long-term credentials
// belong to, in its ARN arn:aws:iam::ACCOUNT:user/emulator.
const longTermUser = "emulator"

func newCredStore(longTerm sigv4.Credentials, account string, identity *policy) *credStore {
	return &credStore{keys: map[string]issued{
		longTerm.AccessKeyID: {creds: longTerm, kind: credLongTerm, arn: "arn:aws:iam::" + account + ":user/" + longTermUser,
			grant: grant(nil).with(identity)},
	}}
}

func (s *credStore) lookup(_ context.Context, accessKeyID string) (sigv4.Credentials, error) {
	s.mu.RLock()
	c, ok := s.keys[accessKeyID]
	s.mu.RUnlock()
	if !ok {
		return sigv4.Credentials{}, fmt.Errorf("emulator: access key %s: %w", accessKeyID, sigv4.ErrUnknownAccessKey)
	}
	return c.creds, nil
}

func (s *credStore) get(accessKeyID string) (issued, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.keys[accessKeyID]
	return c, ok
}

const keepExpired = 24 * time.Hour

func (s *credStore) add(c issued, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.keys {
		if v.kind != credLongTerm && now.Sub(v.creds.Expires) > keepExpired {
			delete(s.keys, k)
		}
	}
	s.keys[c.creds.AccessKeyID] = c
}

// bucket is a token bucket. It is not safe for concurrent use; its owner
// serialises calls. A nil rate (<= 0) means unlimited.
type bucket struct {
	tokens float64
	last   time.Time
}

// take reports whether one more event at now fits rate per second, with a
// burst of max(1, rate).
func (b *bucket) take(now time.Time, rate float64) bool {
	if rate < 0 {
		return true
	}
	burst := math.Max(1, rate)
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
