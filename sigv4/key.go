package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
	"sync/atomic"
)

// A hasher is a SHA-256 digest that can start from a saved state, and the
// buffers a signature needs. Hashers are pooled: their interface methods
// would move buffers on the stack to the heap.
type hasher struct {
	h         hash.Hash
	u         encoding.BinaryUnmarshaler
	out       [32]byte
	inner     [32]byte
	sts       [256]byte
	canonical [2048]byte // the canonical request of a presigned URL
}

var hashers = sync.Pool{New: func() any {
	h := sha256.New()
	// crypto/sha256 documents that its digests marshal their state.
	return &hasher{h: h, u: h.(encoding.BinaryUnmarshaler)}
}}

// sum returns the SHA-256 of data, continuing from state (saved by
// [saveState]) if it is not nil.
func (h *hasher) sum(state, data []byte) [32]byte {
	if state == nil {
		h.h.Reset()
	} else if err := h.u.UnmarshalBinary(state); err != nil {
		panic("sigv4: restoring a SHA-256 state: " + err.Error())
	}
	h.h.Write(data)
	return [32]byte(h.h.Sum(h.out[:0]))
}

// saveState returns the SHA-256 state after hashing data.
func saveState(data []byte) []byte {
	h := sha256.New()
	h.Write(data)
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic("sigv4: saving a SHA-256 state: " + err.Error())
	}
	return state
}

// signature returns the hex HMAC under key of the string to sign for a
// canonical request's hash. The HMAC starts from the states saved after
// the key's inner and outer pads, which spares hashing a block each.
func (h *hasher) signature(key *keyEntry, amzDate []byte, region, service string, crHash [32]byte) [64]byte {
	sts := appendStringToSign(h.sts[:0], amzDate, region, service, crHash)
	h.inner = h.sum(key.inner, sts)
	mac := h.sum(key.outer, h.inner[:])
	var out [64]byte
	encodeHex(out[:], mac[:])
	return out
}

// hexPairs holds the two lower-case hex digits of every byte value.
const hexPairs = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" +
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" +
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" +
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

// encodeHex is hex.Encode for a hash, a pair of digits at a time, which
// takes half as long.
func encodeHex(dst []byte, src []byte) {
	_ = dst[2*len(src)-1]
	for i, c := range src {
		dst[2*i], dst[2*i+1] = hexPairs[2*int(c)], hexPairs[2*int(c)+1]
	}
}

// deriveKey computes the SigV4 signing key for a secret key, a date
// (yyyymmdd), a region and a service. It runs once per scope and day, so
// crypto/hmac's allocations do not matter here.
func deriveKey(secret, date, region, service string) [32]byte {
	k := []byte("AWS4" + secret)
	for _, msg := range [...]string{date, region, service, "aws4_request"} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(msg))
		k = m.Sum(nil)
	}
	return [32]byte(k)
}

type keyID struct {
	secret          string
	date            [8]byte
	region, service string
}

// keyEntry holds, for one signing key, the SHA-256 states after its HMAC
// pads (the key XOR 0x36 and XOR 0x5c, zero-extended to SHA-256's block)
// and the escaped form of the session token last signed with it. Restoring
// a saved state spares hashing a block per pad on every signature, where
// crypto/hmac would also allocate (BenchmarkSignatureSavedState against
// BenchmarkSignatureHMAC).
// The token sits here because STS issues a secret key and a session token
// together: one cached token per secret cannot thrash when every channel
// and role has credentials of its own.
type keyEntry struct {
	id           keyID
	inner, outer []byte
	token        atomic.Pointer[[2]string] // raw, escaped
}

func newKeyEntry(id keyID, key [32]byte) *keyEntry {
	var ipad, opad [64]byte
	for i := range 64 {
		var c byte
		if i < 32 {
			c = key[i]
		}
		ipad[i], opad[i] = c^0x36, c^0x5c
	}
	return &keyEntry{id: id, inner: saveState(ipad[:]), outer: saveState(opad[:])}
}

// appendEscapedToken appends token escaped for a query. A token is
// hundreds of bytes and is signed into every URL until it is renewed, so
// escaping it once saves a good share of the signing time.
func (e *keyEntry) appendEscapedToken(b []byte, token string) []byte {
	if t := e.token.Load(); t != nil && t[0] == token {
		return append(b, t[1]...)
	}
	start := len(b)
	b = appendEscaped(b, token, false)
	e.token.Store(&[2]string{token, string(b[start:])})
	return b
}

// keyCacheSize bounds a cache: when full it starts again empty, which
// costs one derivation per live scope.
const keyCacheSize = 1024

// A keyCache remembers derived signing keys by secret, date, region and
// service, so that signing derives a key once a day per scope instead of
// four HMACs per signature. It is safe for concurrent use.
type keyCache struct {
	last atomic.Pointer[keyEntry] // the most recent key: most callers sign with one
	mu   sync.Mutex
	m    map[keyID]*keyEntry
}

// lazyKeys is the key cache of a Signer or Verifier, made on first use so
// that their zero values need no constructor.
type lazyKeys struct {
	p atomic.Pointer[keyCache]
}

func (l *lazyKeys) cache() *keyCache {
	if c := l.p.Load(); c != nil {
		return c
	}
	l.p.CompareAndSwap(nil, &keyCache{m: make(map[keyID]*keyEntry)})
	return l.p.Load()
}

func (c *keyCache) entry(secret string, date [8]byte, region, service string) *keyEntry {
	id := keyID{secret, date, region, service}
	if e := c.last.Load(); e != nil && e.id == id {
		return e
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		e = newKeyEntry(id, deriveKey(secret, string(date[:]), region, service))
		c.mu.Lock()
		if len(c.m) >= keyCacheSize {
			clear(c.m)
		}
		c.m[id] = e
		c.mu.Unlock()
	}
	c.last.Store(e)
	return e
}
