package sigv4

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"sync"
	"sync/atomic"
)

// hmacSHA256 returns HMAC-SHA256(key, msg). It is written over sha256.Sum256
// with buffers on the stack, because crypto/hmac allocates on every call and
// signing is on hot paths.
func hmacSHA256(key, msg []byte) [32]byte {
	var k [64]byte
	if len(key) > 64 {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var inner [64 + 128]byte
	buf := inner[:0]
	for _, c := range k {
		buf = append(buf, c^0x36)
	}
	buf = append(buf, msg...)
	isum := sha256.Sum256(buf)
	var outer [64 + 32]byte
	for i, c := range k {
		outer[i] = c ^ 0x5c
	}
	copy(outer[64:], isum[:])
	return sha256.Sum256(outer[:])
}

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

// DeriveKey computes the SigV4 signing key for a secret key, a date
// (yyyymmdd), a region and a service.
func DeriveKey(secret, date, region, service string) [32]byte {
	var sbuf [4 + 128]byte
	k := hmacSHA256(append(append(sbuf[:0], "AWS4"...), secret...), []byte(date))
	k = hmacSHA256(k[:], []byte(region))
	k = hmacSHA256(k[:], []byte(service))
	return hmacSHA256(k[:], []byte("aws4_request"))
}

type keyID struct {
	secret          string
	date            [8]byte
	region, service string
}

// keyEntry is a signing key and the SHA-256 states after its HMAC pads
// (the key XOR 0x36 and XOR 0x5c, zero-extended to SHA-256's block).
type keyEntry struct {
	id           keyID
	key          [32]byte
	inner, outer []byte
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
	return &keyEntry{id: id, key: key, inner: saveState(ipad[:]), outer: saveState(opad[:])}
}

// A KeyCache remembers derived signing keys by secret, date, region and
// service, so that signing derives a key once a day per scope instead of
// four HMACs per signature. It is safe for concurrent use. The zero value is
// not usable: call [NewKeyCache].
type KeyCache struct {
	last atomic.Pointer[keyEntry] // the most recent key: most callers sign with one
	mu   sync.Mutex
	max  int
	m    map[keyID]*keyEntry
}

// NewKeyCache returns a cache that holds up to size keys (at least 1); when
// full it starts again empty, which costs one derivation per live scope.
func NewKeyCache(size int) *KeyCache {
	return &KeyCache{max: max(size, 1), m: make(map[keyID]*keyEntry)}
}

// defaultKeys serves every Signer and Verifier whose Keys field is nil.
var defaultKeys = NewKeyCache(1024)

// Key returns the signing key for the scope, deriving it on a miss. date is
// yyyymmdd.
func (c *KeyCache) Key(secret, date, region, service string) [32]byte {
	if len(date) != 8 {
		return DeriveKey(secret, date, region, service)
	}
	return c.entry(secret, [8]byte([]byte(date)), region, service).key
}

func (c *KeyCache) entry(secret string, date [8]byte, region, service string) *keyEntry {
	id := keyID{secret, date, region, service}
	if e := c.last.Load(); e != nil && e.id == id {
		return e
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		e = newKeyEntry(id, DeriveKey(secret, string(date[:]), region, service))
		c.mu.Lock()
		if len(c.m) >= c.max {
			clear(c.m)
		}
		c.m[id] = e
		c.mu.Unlock()
	}
	c.last.Store(e)
	return e
}
