package lapse

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"
)

// coldRing is the cold tier of one cache shard: sessions evicted from
// the shard's map, encoded (coldcodec.go) in a ring of memory outside
// the Go heap (coldAlloc), found through an index of integers. Neither
// is scanned by the garbage collector, and the ring is not counted in
// the heap the collector lets grow to twice its live size: a cold
// session costs its encoding (about 160 bytes with a short user agent,
// 250 with a browser's) and its index slot, not
// the 800 or so of a session in the map, twice over. A verify that finds
// its session here decodes it: two allocations and under a
// microsecond, not a store read. The entry stays where it is unless it is in the
// older half of the ring, due to be overwritten: then the session moves
// back into the map (and from there, when evicted, to the ring's head),
// so a session in use outlives the ring's passes while verifies spread
// over more sessions than the map holds do not turn every hit into an
// eviction.
//
// Entries are written one after another and never moved; when the ring
// is full it starts again at its beginning, over the oldest entries
// (first in, first out), as VictoriaMetrics' fastcache does. An index
// entry names the offset an entry was written at and the pass over the
// ring (modulo 4: the index holds entries of this pass and the last
// only), so an entry overwritten since is recognised without a search;
// the index drops such entries once per pass. Index keys and values are
// 32-bit, about 14 bytes a session with the map's slack. An entry is
// [4-byte length][the token hash's first 27 bytes][encoding]: the next 4
// are the index's key and the last chose the shard, so the whole hash is
// compared at every read. Key and shard come from the hash's end, which
// is random for both shapes of token; the start of a token's hash with a
// time prefix is the time (see [HashToken]), shared by many sessions.
//
// The shard's lock guards the ring: reads under the read lock, writes
// under the write lock.
type coldRing struct {
	mem   []byte // nil: no cold tier
	chunk uint32 // an entry never spans two chunks
	idx   map[uint32]coldRef
	pos   uint32 // where the next entry goes
	gen   uint32 // passes over the ring
	buf   []byte // encoding scratch, under the write lock
}

// coldRef is where an entry was written: the pass over the ring modulo
// 4 in its top 2 bits, the offset (under maxColdShard) in the rest.
type coldRef uint32

const coldOffset = 1<<30 - 1

func (ref coldRef) pos() uint32 { return uint32(ref) & coldOffset }
func (ref coldRef) gen() uint32 { return uint32(ref) >> 30 }

const (
	coldChunk  = 64 << 10
	coldKept   = len(TokenHash{}) - 4 - 1 // the hash's bytes kept in an entry: all but the key's and the shard's
	coldHeader = 4 + coldKept
)

// init makes r a ring over mem, cut in chunks of at most coldChunk.
func (r *coldRing) init(mem []byte) {
	r.chunk = uint32(min(len(mem), coldChunk))
	r.mem = mem[:len(mem)/int(r.chunk)*int(r.chunk)]
	r.idx = make(map[uint32]coldRef)
}

func (r *coldRing) on() bool { return r.mem != nil }

func coldKey(h TokenHash) uint32 { return binary.LittleEndian.Uint32(h[coldKept:]) }

// valid reports whether the entry ref names has not been overwritten:
// written in this pass before the head, or in the last one after it.
func (r *coldRing) valid(ref coldRef) bool {
	gen := r.gen & 3
	return ref.gen() == gen && ref.pos() < r.pos || ref.gen() == (gen+3)&3 && ref.pos() >= r.pos
}

// entry returns the encoding kept for h, or nil, and where it is. It
// aliases the ring: decode it before the lock is released.
func (r *coldRing) entry(h TokenHash) ([]byte, coldRef) {
	ref, ok := r.idx[coldKey(h)]
	if !ok || !r.valid(ref) {
		return nil, ref
	}
	e := r.mem[ref.pos():]
	n := int(binary.LittleEndian.Uint32(e))
	if n > len(e)-coldHeader || !bytes.Equal(e[4:coldHeader], h[:coldKept]) {
		return nil, ref
	}
	return e[coldHeader : coldHeader+n], ref
}

// old reports whether the entry at ref is in the older half of the ring,
// due to be overwritten.
func (r *coldRing) old(ref coldRef) bool {
	age := r.pos - ref.pos() // bytes written since
	if ref.gen() != r.gen&3 {
		age += uint32(len(r.mem))
	}
	return age > uint32(len(r.mem))/2
}

// session returns the session kept for h, decoded, or nil, and where its
// entry is.
func (r *coldRing) session(h TokenHash) (*Session, coldRef) {
	b, ref := r.entry(h)
	if b == nil {
		return nil, ref
	}
	s, err := decodeSession(b, h)
	if err != nil {
		return nil, ref
	}
	return s, ref
}

// keeps reports whether s can be kept in the ring: its times within the
// range of nanoseconds since 1970 that the encoding holds (1678 to
// 2262), so that none comes back as another.
func keeps(s *Session) bool {
	for _, t := range [...]time.Time{s.CreatedAt, s.LastActiveAt, s.AuthenticatedAt, s.IdleExpiresAt, s.ExpiresAt,
		s.WarnAt, s.EndedAt, s.PrevValidUntil} {
		if !t.IsZero() && (t.Before(minNanoTime) || t.After(maxNanoTime)) {
			return false
		}
	}
	return true
}

var minNanoTime, maxNanoTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// put keeps s under h, over the oldest entries if the ring is full. A
// session too large for a chunk, or with a time the encoding cannot
// hold, is not kept.
func (r *coldRing) put(h TokenHash, s *Session) {
	if !keeps(s) {
		delete(r.idx, coldKey(h))
		return
	}
	r.buf = appendSession(r.buf[:0], s)
	n := uint32(coldHeader + len(r.buf))
	if n > r.chunk {
		delete(r.idx, coldKey(h))
		return
	}
	if r.pos%r.chunk+n > r.chunk { // on to the next chunk
		r.pos += r.chunk - r.pos%r.chunk
	}
	if r.pos >= uint32(len(r.mem)) {
		r.pos = 0
		r.gen++
		r.drop()
	}
	e := r.mem[r.pos:]
	binary.LittleEndian.PutUint32(e, uint32(len(r.buf)))
	copy(e[4:], h[:coldKept])
	copy(e[coldHeader:], r.buf)
	r.idx[coldKey(h)] = coldRef(r.gen&3<<30 | r.pos)
	r.pos += n
}

// del forgets h.
func (r *coldRing) del(h TokenHash) { delete(r.idx, coldKey(h)) }

// drop removes the index entries of overwritten entries, once per pass
// so that the index stays within about twice the entries the ring holds.
func (r *coldRing) drop() {
	for k, ref := range r.idx {
		if !r.valid(ref) {
			delete(r.idx, k)
		}
	}
}

// reset forgets every entry.
func (r *coldRing) reset() {
	if r.on() {
		clear(r.idx)
	}
}

// len returns how many entries the ring holds.
func (r *coldRing) len() int {
	n := 0
	for _, ref := range r.idx {
		if r.valid(ref) {
			n++
		}
	}
	return n
}
