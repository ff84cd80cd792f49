package lapse

import (
	"math"
	"net/netip"
	"runtime"
	"sync"
	"unsafe"
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
//
// It is bounded by a count of entries or by the memory they take (an
// estimate, entrySize), split evenly between its shards. Past the bound
// an insert evicts arbitrary entries of its shard until the new one
// fits. A cache bounded by memory gives most of it to a cold tier
// (coldRing): the entries evicted from the map are kept there, encoded,
// and served from there, decoded; the oldest cold entries make room for
// new ones, unless a verify found them in use. A session in neither
// is read from the store at its next verify, and cached again.
type cache struct {
	shards        [cacheShards]cacheShard
	perShard      int   // entries per shard; 0 when bounded by memory
	perShardBytes int64 // estimated bytes per shard; 0 when bounded by count
}

const cacheShards = 256

type cacheShard struct {
	mu    sync.RWMutex
	epoch uint64
	m     map[TokenHash]*Session
	bytes int64 // the entrySize of the entries in m
	cold  coldRing
}

// newCache returns a cache of at most size sessions.
func newCache(size int) *cache {
	c := &cache{perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[TokenHash]*Session)
	}
	return c
}

// A shard's ring takes at least minColdShard bytes (less would hold too
// few sessions to be worth it) and at most maxColdShard (its offsets are
// 32-bit): a cold tier of 256 GiB at most.
const (
	minColdShard = 4 << 10
	maxColdShard = 1 << 30
)

// newCacheBytes returns a cache whose entries take about bytes in all:
// an eighth of it in the map, the rest in the cold tier.
func newCacheBytes(bytes int64) *cache {
	cold := bytes - bytes/8 // the map keeps the sessions verified last, the ring most
	c := &cache{perShardBytes: max(1, (bytes-cold)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[TokenHash]*Session)
	}
	per := min(cold/cacheShards, maxColdShard)
	if per < minColdShard || per*cacheShards > math.MaxInt {
		c.perShardBytes = max(1, bytes/cacheShards)
		return c
	}
	mem := coldAlloc(int(per * cacheShards))
	if mem == nil {
		return c
	}
	for i := range c.shards {
		c.shards[i].cold.init(mem[int64(i)*per : int64(i+1)*per])
	}
	runtime.AddCleanup(c, coldFree, mem)
	return c
}

// entryOverhead is what an entry costs besides its session's strings and
// slices: the Session struct and the map's slot (key, pointer and the
// swiss table's control byte and spare capacity, about a quarter).
const entryOverhead = int64(unsafe.Sizeof(Session{})) + (int64(unsafe.Sizeof(TokenHash{}))+8)*5/4

// entrySize estimates the heap memory an entry of s takes: its struct,
// its map slot, and the bytes its strings and slices point to, each
// rounded up to a word as the allocator at least does. Strings a
// session may share with others (its tier's name, status) are counted
// too: the bound errs on the safe side.
func entrySize(s *Session) int64 {
	n := entryOverhead
	str := func(v string) {
		if v != "" {
			n += int64((len(v) + 7) &^ 7)
		}
	}
	for _, v := range [...]string{s.ID, s.Subject, s.Tenant, s.Tier, string(s.Status), string(s.EndReason),
		s.IP, s.UserAgent, s.IdP.Issuer, s.IdP.Subject, s.IdP.SID} {
		str(v)
	}
	n += int64((len(s.Metadata) + 7) &^ 7)
	n += int64(cap(s.AMR)+cap(s.Policy.Profiles)) * int64(unsafe.Sizeof(""))
	for _, v := range s.AMR {
		str(v)
	}
	for _, v := range s.Policy.Profiles {
		str(v)
	}
	return n
}

// shard is chosen by the hash's last byte, random in both shapes of token
// (see [HashToken]): the first ones of a token issued since the time
// prefix are a clock, and would send every session to one shard.
func (c *cache) shard(h TokenHash) *cacheShard { return &c.shards[h[len(h)-1]] }

// get returns the cached session, or nil, and the shard's epoch to pass
// to putIf after reading the store. A session found in the cold tier is
// decoded, and moved back into the map if the ring is about to drop it.
func (c *cache) get(h TokenHash) (*Session, uint64) {
	sh := c.shard(h)
	sh.mu.RLock()
	s, epoch := sh.m[h], sh.epoch
	if s != nil || !sh.cold.on() {
		sh.mu.RUnlock()
		return s, epoch
	}
	s, ref := sh.cold.session(h)
	old := s != nil && sh.cold.old(ref)
	sh.mu.RUnlock()
	if old {
		c.promote(sh, h, s, epoch, ref)
	}
	return s, epoch
}

// promote moves s, decoded from the cold entry at ref, into the map,
// unless anything changed h's entries since it was read: its shard's
// epoch, an entry put in the map, or another in the ring.
func (c *cache) promote(sh *cacheShard, h TokenHash, s *Session, epoch uint64, ref coldRef) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[h]; ok || sh.epoch != epoch {
		return
	}
	if _, now := sh.cold.entry(h); now != ref {
		return
	}
	c.insert(sh, h, s)
}

// epoch returns the shard's epoch of h, to pass to putIf after a store
// call whose result is to be cached.
func (c *cache) epoch(h TokenHash) uint64 {
	sh := c.shard(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.epoch
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
	sh.remove(h)
	sh.mu.Unlock()
}

// clear drops every entry.
func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.epoch++
		clear(sh.m)
		sh.bytes = 0
		sh.cold.reset()
		sh.mu.Unlock()
	}
}

// CacheStats is what a manager's verify cache holds now.
type CacheStats struct {
	// MapSessions are held as structs, served without decoding.
	MapSessions int
	// ColdSessions are held encoded in the cold tier (a cache bounded by
	// [Config.CacheMemory]).
	ColdSessions int
}

// stats counts the sessions of both tiers, a shard at a time.
func (c *cache) stats() CacheStats {
	var st CacheStats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		st.MapSessions += len(sh.m)
		if sh.cold.on() {
			st.ColdSessions += sh.cold.len()
		}
		sh.mu.RUnlock()
	}
	return st
}

// insert adds s, evicting arbitrary entries while the shard is past its
// bound (into the cold tier, if any). It keeps an ended entry rather
// than put an active state of the same session over it: that state can
// only be older.
func (c *cache) insert(sh *cacheShard, h TokenHash, s *Session) {
	if s.TokenHash != h || s.Status == StatusActive && sh.ended(h, s.ID) {
		return
	}
	sh.remove(h)
	size := entrySize(s)
	for k, v := range sh.m {
		if !c.full(sh, size) {
			break
		}
		sh.bytes -= entrySize(v)
		delete(sh.m, k)
		if sh.cold.on() {
			sh.cold.put(k, v)
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
	sh.bytes += size
}

// full reports whether sh has no room for an entry of size bytes.
func (c *cache) full(sh *cacheShard, size int64) bool {
	if c.perShardBytes > 0 {
		return sh.bytes+size > c.perShardBytes
	}
	return len(sh.m) >= c.perShard
}

// ended reports whether the shard holds an ended state of session id
// under h.
func (sh *cacheShard) ended(h TokenHash, id string) bool {
	if old, ok := sh.m[h]; ok {
		return old.ID == id && old.Status != StatusActive
	}
	if sh.cold.on() {
		if b, _ := sh.cold.entry(h); b != nil {
			return coldEnded(b, id)
		}
	}
	return false
}

// remove drops the entry of h, if any, from both tiers.
func (sh *cacheShard) remove(h TokenHash) {
	if old, ok := sh.m[h]; ok {
		sh.bytes -= entrySize(old)
		delete(sh.m, h)
	}
	if sh.cold.on() {
		sh.cold.del(h)
	}
}
