package sigv4

import (
	"crypto/sha256"
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

// hmacSHA256Prefixed is hmacSHA256 for a message written into buf after 64
// bytes reserved for the padded key, which saves copying long messages.
func hmacSHA256Prefixed(key *[32]byte, buf []byte) [32]byte {
	for i := range 64 {
		var c byte
		if i < 32 {
			c = key[i]
		}
		buf[i] = c ^ 0x36
	}
	isum := sha256.Sum256(buf)
	var outer [64 + 32]byte
	for i := range 64 {
		var c byte
		if i < 32 {
			c = key[i]
		}
		outer[i] = c ^ 0x5c
	}
	copy(outer[64:], isum[:])
	return sha256.Sum256(outer[:])
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

type keyEntry struct {
	id  keyID
	key [32]byte
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
	return c.key(secret, [8]byte([]byte(date)), region, service)
}

func (c *KeyCache) key(secret string, date [8]byte, region, service string) [32]byte {
	id := keyID{secret, date, region, service}
	if e := c.last.Load(); e != nil && e.id == id {
		return e.key
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		e = &keyEntry{id: id, key: DeriveKey(secret, string(date[:]), region, service)}
		c.mu.Lock()
		if len(c.m) >= c.max {
			clear(c.m)
		}
		c.m[id] = e
		c.mu.Unlock()
	}
	c.last.Store(e)
	return e.key
}
