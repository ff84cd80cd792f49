package lapse

import (
	"sync"
	"time"
)

// boundCookies remembers, per session, the last bound cookie a verify
// accepted, until it expires, so that a device-bound session's requests
// read the binding from the store once per bound cookie rather than on
// every request.
//
// Only acceptances are kept. A binding is made once and never changes
// key, a refresh keeps the cookie it replaces valid until that cookie's
// own expiry ([DeviceBinding.holds]), and what ends a session early
// (revoke, theft) is caught by the session's own check, which runs
// before this one; so there is nothing to invalidate. One case differs
// from the store: the binding keeps the current and the previous cookie
// only, so after two refreshes within one cookie lifetime (only the
// device's key can refresh) a cookie this node remembers is still
// accepted here until its expiry, while a node that reads the store
// treats it as stolen. The window is never longer than the cookie's own
// lifetime, which a copied cookie has anyway.
type boundCookies struct {
	mu sync.Mutex
	m  map[string]boundCookie
}

type boundCookie struct {
	hash  TokenHash
	until time.Time
}

// maxBoundCookies bounds the memory: past it the map starts over, which
// costs one store read per bound session, never a wrong answer.
const maxBoundCookies = 100_000

// holds reports whether h is the cookie last accepted for id and is
// still unexpired at now.
func (c *boundCookies) holds(id string, h TokenHash, now time.Time) bool {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	return ok && now.Before(e.until) && h.Equal(e.hash)
}

// accept remembers h as accepted for id until until.
func (c *boundCookies) accept(id string, h TokenHash, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxBoundCookies {
		c.m = make(map[string]boundCookie)
	}
	c.m[id] = boundCookie{hash: h, until: until}
}
