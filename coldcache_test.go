package lapse

import (
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fillEveryField sets every exported field of the struct v points to,
// and of the structs it holds, to a value that differs from the zero
// and from the other fields', so a field the codec forgets shows.
func fillEveryField(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() {
			continue
		}
		*n++
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Unix(1_800_000_000+int64(*n)*3600, int64(*n)).UTC()))
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			f.SetInt(int64(*n) * int64(time.Minute))
		case f.Type() == reflect.TypeOf(TokenHash{}):
			f.Set(reflect.ValueOf(HashSecret(fmt.Sprint(*n))))
		case f.Kind() == reflect.Struct:
			fillEveryField(t, f, n)
		case f.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("v%d", *n))
		case f.Kind() == reflect.Int:
			f.SetInt(int64(*n))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{fmt.Sprintf("a%d", *n), fmt.Sprintf("b%d", *n)}))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			f.SetBytes([]byte(fmt.Sprintf(`{"k":%d}`, *n)))
		default:
			t.Fatalf("field %s of kind %s: teach fillEveryField and the cold codec about it", sf.Name, f.Kind())
		}
	}
}

// TestColdCodecCoversEveryField: a session with every field set comes
// back from the cold tier's encoding equal, so a field added to Session
// or Tier fails here until the codec keeps it.
func TestColdCodecCoversEveryField(t *testing.T) {
	var s Session
	n := 0
	fillEveryField(t, reflect.ValueOf(&s).Elem(), &n)
	got, err := decodeSession(appendSession(nil, &s), s.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, s) {
		t.Errorf("decoded\n%+v\nwant\n%+v", *got, s)
	}
	// nil and empty lists, times before creation, an empty session
	empty := Session{AMR: []string{}, CreatedAt: time.Unix(100, 0).UTC(), ExpiresAt: time.Unix(50, 7).UTC()}
	if got, err := decodeSession(appendSession(nil, &empty), TokenHash{}); err != nil || !reflect.DeepEqual(*got, empty) {
		t.Errorf("decoded %+v, %v; want %+v", got, err, empty)
	}
}

// FuzzColdDecode: no input makes the decoder panic, and what it accepts
// encodes back to an entry that decodes the same.
func FuzzColdDecode(f *testing.F) {
	var s Session
	n := 0
	fillEveryField(&testing.T{}, reflect.ValueOf(&s).Elem(), &n)
	f.Add(appendSession(nil, &s))
	f.Add(appendSession(nil, &Session{}))
	f.Add([]byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		coldEnded(b, "ses_a")
		got, err := decodeSession(b, TokenHash{})
		if err != nil {
			return
		}
		again, err := decodeSession(appendSession(nil, got), TokenHash{})
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", got, again, err)
		}
	})
}

func coldSession(i int) *Session {
	now := time.Unix(1_800_000_000, 0).UTC()
	return &Session{ID: fmt.Sprintf("ses_%06d", i), TokenHash: HashSecret(fmt.Sprint(i)), Subject: fmt.Sprintf("user%d", i),
		Tier: "standard", Status: StatusActive, AMR: []string{"pwd"}, IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		CreatedAt: now, LastActiveAt: now, IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour),
		Policy: Tier{IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour}}
}

// coldCount returns the entries of c's map and of its cold tier.
func coldCount(c *cache) (hot, cold int) {
	for i := range c.shards {
		hot += len(c.shards[i].m)
		for _, ref := range c.shards[i].cold.idx {
			if c.shards[i].cold.valid(ref) {
				cold++
			}
		}
	}
	return hot, cold
}

// TestColdTierKeepsWhatTheMapEvicts: a cache bounded by memory holds
// many times the sessions its map does, each served whole (the one
// stored, its address parsed again). A session served from the newer
// half of its ring stays there; one from the older half, due to be
// overwritten, moves back into the map.
func TestColdTierKeepsWhatTheMapEvicts(t *testing.T) {
	c := newCacheBytes(4 << 20) // rings of 14 KiB, filled to about 60 %
	const n = 12_000
	for i := range n {
		c.set(coldSession(i))
	}
	hot, cold := coldCount(c)
	if hot+cold != n || cold < n/2 {
		t.Fatalf("the cache holds %d sessions in its map and %d in its cold tier, want all %d, most of them cold", hot, cold, n)
	}
	promoted, stayed := 0, 0
	for i := range n {
		want := coldSession(i)
		sh := c.shard(want.TokenHash)
		_, ref := sh.cold.entry(want.TokenHash)
		inCold := sh.m[want.TokenHash] == nil
		old := inCold && sh.cold.old(ref)
		got, _ := c.get(want.TokenHash)
		if got == nil {
			t.Fatalf("session %d is not served", i)
		}
		if g := *got; g.addr != (netip.Addr{}) && g.addr != netip.MustParseAddr(want.IP) {
			t.Fatalf("session %d served with its address parsed as %v, want %s", i, g.addr, want.IP)
		} else if g.addr = (netip.Addr{}); !reflect.DeepEqual(g, *want) {
			t.Fatalf("session %d served as\n%+v\nwant\n%+v", i, g, *want)
		}
		switch inMap := sh.m[want.TokenHash] == got; {
		case old && !inMap:
			t.Fatalf("session %d, served from the older half of its ring, was not moved into the map", i)
		case inCold && !old && inMap:
			t.Fatalf("session %d, served from the newer half of its ring, was moved into the map", i)
		case old:
			promoted++
		case inCold:
			stayed++
		}
	}
	if promoted == 0 || stayed == 0 {
		t.Errorf("of the cold sessions %d moved into the map and %d stayed: want some of each", promoted, stayed)
	}
}

// TestColdTierIsBounded: past its size the cold tier drops its oldest
// entries, its index does not outgrow what the ring holds, and what it
// holds is still served.
func TestColdTierIsBounded(t *testing.T) {
	c := newCacheBytes(4 << 20)
	const n = 100_000
	for i := range n {
		c.set(coldSession(i))
	}
	hot, cold := coldCount(c)
	if hot+cold >= n/2 {
		t.Fatalf("a 4 MiB cache holds %d of %d sessions", hot+cold, n)
	}
	indexed := 0
	for i := range c.shards {
		indexed += len(c.shards[i].cold.idx)
	}
	if indexed > 2*cold+cacheShards {
		t.Errorf("the cold index has %d entries for %d sessions held", indexed, cold)
	}
	if s, _ := c.get(coldSession(0).TokenHash); s != nil {
		t.Errorf("the first session, long overwritten, is still served")
	}
	if s, _ := c.get(coldSession(n - 1).TokenHash); s == nil {
		t.Errorf("the last session is not served")
	}
	served := 0
	for i := n - cold/2; i < n; i++ {
		if s, _ := c.get(coldSession(i).TokenHash); s != nil {
			served++
		}
	}
	if served < cold/4 {
		t.Errorf("of the %d newest sessions %d are served", cold/2, served)
	}
}

// TestColdTierFollowsChanges: forgetting, clearing and ending reach a
// session kept in the cold tier; an ended one stays ended against a late
// active write; and a fill that read before a change is dropped.
func TestColdTierFollowsChanges(t *testing.T) {
	c := newCacheBytes(16 << 20)
	const n = 20_000
	cold := func() []*Session { // sessions now in the cold tier
		var v []*Session
		for i := range n {
			s := coldSession(i)
			if c.shard(s.TokenHash).m[s.TokenHash] == nil {
				v = append(v, s)
			}
		}
		return v
	}
	for i := range n {
		s := coldSession(i)
		s.Status, s.EndReason = StatusRevoked, ReasonAdmin
		if i%2 == 0 {
			s = coldSession(i)
		}
		c.set(s)
	}
	v := cold()
	if len(v) < 100 {
		t.Fatalf("only %d sessions went cold", len(v))
	}
	for _, s := range v[:50] {
		c.forget(s.TokenHash)
		if got, _ := c.get(s.TokenHash); got != nil {
			t.Fatalf("a forgotten cold session is served")
		}
	}
	for _, s := range v[50:] {
		sh := c.shard(s.TokenHash)
		b, _ := sh.cold.entry(s.TokenHash)
		if b == nil {
			continue
		}
		wasEnded := coldEnded(b, s.ID)
		c.set(s) // a late write of the active state read earlier
		got, _ := c.get(s.TokenHash)
		if wasEnded && got.Status != StatusRevoked {
			t.Fatalf("a late active write replaced a revoked cold session")
		}
		if !wasEnded && got.Status != StatusActive {
			t.Fatalf("an active cold session was not replaced")
		}
	}
	s := cold()[0]
	epoch := c.epoch(s.TokenHash)
	c.forget(s.TokenHash)
	c.putIf(s.TokenHash, s, epoch)
	if got, _ := c.get(s.TokenHash); got != nil {
		t.Errorf("a fill that read before a forget was stored")
	}
	c.clear()
	if hot, cold := coldCount(c); hot+cold != 0 {
		t.Errorf("after clear the cache holds %d + %d sessions", hot, cold)
	}
}

// TestColdTierEndedStaysEndedUnderRace: while sessions move between the
// map and the cold tier under concurrent verifies, late writes of their
// active state and fills that read before a change, a session once
// revoked is never served active again (run with -race).
func TestColdTierEndedStaysEndedUnderRace(t *testing.T) {
	c := newCacheBytes(64 << 20)                    // rings far larger than this test writes: none wraps
	c.perShardBytes = 2 * entrySize(coldSession(0)) // two sessions a shard in the map: most go cold
	const n = 2000
	var revoked [n]atomic.Bool
	for i := range n {
		c.set(coldSession(i))
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 20_000 {
				i := (k*7 + w*13) % n
				s := coldSession(i)
				was := revoked[i].Load()
				got, epoch := c.get(s.TokenHash)
				if was && (got == nil || got.Status == StatusActive) {
					bad.Add(1)
				}
				switch k % 3 {
				case 0:
					c.set(s) // a late write of the active state
				case 1:
					c.putIf(s.TokenHash, s, epoch) // a fill
				}
			}
		}()
	}
	for i := range n {
		s := coldSession(i)
		s.Status, s.EndReason = StatusRevoked, ReasonAdmin
		c.set(s)
		revoked[i].Store(true)
	}
	wg.Wait()
	for i := range n {
		if got, _ := c.get(coldSession(i).TokenHash); got == nil || got.Status != StatusRevoked {
			t.Fatalf("revoked session %d is served as %+v", i, got)
		}
	}
	if b := bad.Load(); b != 0 {
		t.Errorf("%d verifies after a revoke were served an active session", b)
	}
}

// TestColdRingValidAtItsEdges: an entry is valid until the ring's head
// passes over it, across the skip to a new chunk and the wrap to the
// ring's start.
func TestColdRingValidAtItsEdges(t *testing.T) {
	var r coldRing
	r.init(make([]byte, 3*1024))
	r.chunk = 1024
	s := coldSession(0)
	n := coldHeader + len(appendSession(nil, s))
	per := 1024 / n // entries a chunk holds
	var hashes []TokenHash
	for i := range 3*per + 1 { // the last one wraps to the start
		h := HashSecret(fmt.Sprint(i))
		r.put(h, s)
		hashes = append(hashes, h)
	}
	if r.gen != 1 || r.pos != uint32(n) {
		t.Fatalf("after %d entries of %d bytes the ring is at pass %d, offset %d", len(hashes), n, r.gen, r.pos)
	}
	if b, _ := r.entry(hashes[0]); b != nil {
		t.Errorf("the first entry, overwritten by the wrap, is still found")
	}
	for i, h := range hashes[1:] {
		if b, _ := r.entry(h); b == nil {
			t.Errorf("entry %d, not overwritten, is not found", i+1)
		}
	}
	for i := range per - 1 { // fill the rest of the first chunk again
		r.put(HashSecret(fmt.Sprint("again", i)), s)
	}
	for i, h := range hashes {
		b, _ := r.entry(h)
		if want := i >= per; (b != nil) != want {
			t.Errorf("entry %d found: %v, want %v", i, b != nil, want)
		}
	}
	if len(r.idx) > 3*per+per {
		t.Errorf("the index holds %d entries for a ring of %d", len(r.idx), 3*per)
	}
}
