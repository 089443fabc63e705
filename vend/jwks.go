// The JWT issuer's key set (JWKS): parsed from the config or fetched from
// its URL, cached, refreshed in the background, and fetched again when a
// token names a key that is not known yet (key rotation).

package vend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// httpDoer sends HTTP requests; *http.Client is one.
type httpDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// JWKS fetch limits.
const (
	jwksMaxBytes     = 1 << 20
	jwksTimeout      = 5 * time.Second
	jwksAttempts     = 3
	jwksMinRefetch   = time.Minute // between fetches caused by unknown key ids
	jwksRetryBackoff = 200 * time.Millisecond
	// jwksWait bounds how long a request waits for a fetch of the key
	// set; past it, the issuer counts as unreachable.
	jwksWait = 2 * time.Second
)

// errIssuerUnavailable is a token naming a key that is not known while the
// issuer's key set cannot be fetched.
var errIssuerUnavailable = errors.New("the issuer's key set cannot be fetched")

// jwk is one key of a key set, as JSON.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// publicKey is a usable key and the algorithm it is for.
type publicKey struct {
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// keys maps key ids to keys.
type keys map[string]publicKey

// parseJWKS reads a JSON Web Key Set. Keys of other types, curves or uses
// are skipped; a set with no usable key is an error.
func parseJWKS(b []byte) (keys, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("key set is not valid JSON: %v", err)
	}
	out := make(keys)
	var firstErr error
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		pk, err := k.parse()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keys[%d] (kid %q): %v", i, k.Kid, err)
			}
			continue
		}
		if pk.key == nil {
			continue
		}
		out[k.Kid] = pk
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, errors.New("key set has no RSA or P-256 signing key")
	}
	return out, nil
}

// parse returns the key, or a zero publicKey for a kind this server does
// not use.
func (k jwk) parse() (publicKey, error) {
	b64 := func(field, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%s must be unpadded base64url", field)
		}
		return b, nil
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, nil
		}
		n, err := b64("n", k.N)
		if err != nil {
			return publicKey{}, err
		}
		e, err := b64("e", k.E)
		if err != nil {
			return publicKey{}, err
		}
		if len(e) > 4 {
			return publicKey{}, errors.New("e is too large")
		}
		ei := 0
		for _, c := range e {
			ei = ei<<8 | int(c)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ei}
		if pub.N.BitLen() < 2048 || ei < 3 || ei%2 == 0 {
			return publicKey{}, errors.New("RSA keys must have at least 2048 bits and an odd exponent")
		}
		return publicKey{alg: "RS256", key: pub}, nil
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return publicKey{}, nil
		}
		x, err := b64("x", k.X)
		if err != nil {
			return publicKey{}, err
		}
		y, err := b64("y", k.Y)
		if err != nil {
			return publicKey{}, err
		}
		if len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("P-256 coordinates must be 32 bytes")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, errors.New("the point is not on P-256")
		}
		return publicKey{alg: "ES256", key: pub}, nil
	}
	return publicKey{}, nil
}

// keySet is the issuer's keys: inline ones from the config and fetched
// ones from the URL.
type keySet struct {
	url     string
	inline  keys
	refresh time.Duration
	clock   func() time.Time
	client  httpDoer
	log     *slog.Logger

	wait time.Duration // jwksWait, shorter in tests

	// ctx ends the fetches when the server closes; wg counts them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fetched atomic.Pointer[keys]
	mu      sync.Mutex
	last    time.Time     // when a fetch last started
	got     time.Time     // when a fetch last succeeded
	failed  bool          // the last fetch failed
	running chan struct{} // closed when the fetch under way ends; nil if none
}

func newKeySet(url string, inline []byte, refresh time.Duration, clock func() time.Time, client httpDoer, log *slog.Logger) (*keySet, error) {
	ks := &keySet{url: url, refresh: refresh, clock: clock, client: client, log: log, wait: jwksWait}
	ks.ctx, ks.cancel = context.WithCancel(context.Background())
	if len(inline) > 0 {
		k, err := parseJWKS(inline)
		if err != nil {
			return nil, fmt.Errorf("vend: config: auth.jwt.jwks: %v", err)
		}
		ks.inline = k
	}
	return ks, nil
}

// close stops the fetch under way, if any, and waits for it to end.
func (ks *keySet) close() {
	ks.cancel()
	ks.wg.Wait()
}

// lookup returns the key with id kid for alg. A token without a kid may
// use the only key of its algorithm. An unknown kid makes the set be
// fetched again, at most once per jwksMinRefetch; lookup waits at most
// ks.wait for that, and returns errIssuerUnavailable when the fetch did
// not end in time or failed.
func (ks *keySet) lookup(ctx context.Context, kid, alg string) (any, error) {
	if k, ok := ks.find(kid, alg); ok {
		ks.maybeRefresh(false)
		return k, nil
	}
	if ks.url == "" {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	ks.maybeRefresh(true)
	wctx, cancel := context.WithTimeout(ctx, ks.wait)
	defer cancel()
	if err := ks.waitFetch(wctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errIssuerUnavailable
	}
	if k, ok := ks.find(kid, alg); ok {
		return k, nil
	}
	ks.mu.Lock()
	failed := ks.failed
	ks.mu.Unlock()
	if failed {
		return nil, errIssuerUnavailable
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func (ks *keySet) find(kid, alg string) (any, bool) {
	sets := [2]keys{ks.inline}
	if p := ks.fetched.Load(); p != nil {
		sets[1] = *p
	}
	if kid != "" {
		for _, s := range sets {
			if k, ok := s[kid]; ok && k.alg == alg {
				return k.key, true
			}
		}
		return nil, false
	}
	var found any
	n := 0
	for _, s := range sets {
		for _, k := range s {
			if k.alg == alg {
				found = k.key
				n++
			}
		}
	}
	return found, n == 1
}

// maybeRefresh starts a background fetch when the set is due for one: when
// it was last fetched longer than refresh ago, or (unknown) when a token
// named an unknown key and no fetch started within jwksMinRefetch.
func (ks *keySet) maybeRefresh(unknown bool) {
	if ks.url == "" {
		return
	}
	now := ks.clock()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.running != nil || ks.ctx.Err() != nil {
		return
	}
	due := ks.got.IsZero() || now.Sub(ks.got) >= ks.refresh
	if unknown {
		due = ks.last.IsZero() || now.Sub(ks.last) >= jwksMinRefetch
	} else if !ks.last.IsZero() && now.Sub(ks.last) < jwksMinRefetch {
		due = false // a failing issuer is not asked more than once a minute
	}
	if !due {
		return
	}
	ks.last = now
	done := make(chan struct{})
	ks.running = done
	ks.wg.Add(1)
	go func() {
		defer ks.wg.Done()
		defer close(done)
		k, err := ks.fetch(ks.ctx)
		if err != nil {
			ks.log.Warn("JWKS fetch failed; keeping the keys known so far", "url", ks.url, "err", err.Error())
		} else {
			ks.log.Info("JWKS fetched", "url", ks.url, "keys", len(k))
		}
		ks.mu.Lock()
		ks.running = nil
		ks.failed = err != nil
		if err == nil {
			ks.fetched.Store(&k)
			ks.got = ks.clock()
		}
		ks.mu.Unlock()
	}()
}

// waitFetch waits for a fetch under way, if any.
func (ks *keySet) waitFetch(ctx context.Context) error {
	ks.mu.Lock()
	done := ks.running
	ks.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch gets the key set, with a deadline per attempt and bounded retries
// with jittered backoff; ctx ends it, backoff included.
func (ks *keySet) fetch(ctx context.Context) (keys, error) {
	var err error
	for attempt := range jwksAttempts {
		if attempt > 0 {
			d := jwksRetryBackoff << (attempt - 1)
			t := time.NewTimer(d/2 + rand.N(d))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		var k keys
		if k, err = ks.fetchOnce(ctx); err == nil || ctx.Err() != nil {
			return k, err
		}
	}
	return nil, err
}

func (ks *keySet) fetchOnce(ctx context.Context) (keys, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS fetch: HTTP %d", resp.StatusCode)
	}
	if len(b) > jwksMaxBytes {
		return nil, errors.New("JWKS fetch: larger than 1 MiB")
	}
	return parseJWKS(b)
}
