package lapse

import (
	"net/netip"
	"sync"
)

// cache keeps recently verified sessions by token hash so that a verify
// of a known session reads no store. Entries are immutable snapshots,
// each kept under its own current token's hash only.
//
// It never serves a state older than one the manager has written: every
// change the manager commits bumps the shard's epoch, and a fill that
// read the store before the bump is dropped instead of stored (fill and
// touch use putIf with the epoch they saw before their store call). And
// an ended session is final: no write, however late, replaces an ended
// entry with an active one of the same session.
type cache struct {
	shards   [cacheShards]cacheShard
	perShard int
}

const cacheShards = 256

type cacheShard struct {
	mu    sync.RWMutex
	epoch uint64
	m     map[TokenHash]*Session
}

func newCache(size int) *cache {
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[TokenHash]*Session)
	}
	return c
}

func (c *cache) shard(h TokenHash) *cacheShard { return &c.shards[h[0]] }

// get returns the cached session, or nil, and the shard's epoch to pass
// to putIf after reading the store.
func (c *cache) get(h TokenHash) (*Session, uint64) {
	sh := c.shard(h)
	sh.mu.RLock()
	s, epoch := sh.m[h], sh.epoch
	sh.mu.RUnlock()
	return s, epoch
}

// putIf stores s under h unless the shard changed since epoch was read.
func (c *cache) putIf(h TokenHash, s *Session, epoch uint64) {
	sh := c.shard(h)
	sh.mu.Lock()
	if sh.epoch == epoch {
		c.insert(sh, h, s)
	}
	sh.mu.Unlock()
}

// set stores s after a change the manager committed, and bumps the
// epoch so that concurrent fills holding an older state are dropped.
func (c *cache) set(s *Session) {
	sh := c.shard(s.TokenHash)
	sh.mu.Lock()
	sh.epoch++
	c.insert(sh, s.TokenHash, s)
	sh.mu.Unlock()
}

// forget drops the entry of h, for changes made elsewhere.
func (c *cache) forget(h TokenHash) {
	sh := c.shard(h)
	sh.mu.Lock()
	sh.epoch++
	delete(sh.m, h)
	sh.mu.Unlock()
}

// clear drops every entry.
func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.epoch++
		clear(sh.m)
		sh.mu.Unlock()
	}
}

// insert adds s, evicting an arbitrary entry when the shard is full. It
// keeps an ended entry rather than put an active state of the same
// session over it: that state can only be older.
func (c *cache) insert(sh *cacheShard, h TokenHash, s *Session) {
	old, ok := sh.m[h]
	if ok && old.ID == s.ID && old.Status != StatusActive && s.Status == StatusActive {
		return
	}
	if !ok && len(sh.m) >= c.perShard {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	if !s.addr.IsValid() && s.IP != "" {
		// parsed once, as the session enters the cache, so that a
		// verify's drift check compares addresses without parsing
		if a, err := netip.ParseAddr(s.IP); err == nil {
			s.addr = a.Unmap()
		}
	}
	sh.m[h] = s
}
