package lapse

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"
)

// TestTimedTokenIsWellFormed: a token issued at a given time is lapse's
// length and prefix, carries that time's milliseconds (masked), parses,
// and is told apart as the timed shape.
func TestTimedTokenIsWellFormed(t *testing.T) {
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	for range 1000 {
		tok := string(newToken(at))
		if len(tok) != TokenLen || tok[:len(TokenPrefix)] != TokenPrefix {
			t.Fatalf("token %q: want %d characters starting %q", tok, TokenLen, TokenPrefix)
		}
		if got := issuedAt(tok); got != uint64(at.UnixMilli()) {
			t.Fatalf("token %q carries the time %d, want %d", tok, got, at.UnixMilli())
		}
		if _, err := ParseToken(tok); err != nil || shape(tok, TokenPrefix) != timed {
			t.Fatalf("token %q: ParseToken %v, shape %d, want it well formed and timed", tok, err, shape(tok, TokenPrefix))
		}
	}
}

// TestTimedTokensDoNotGrowOneAfterAnother: the time characters of tokens
// issued a millisecond apart are masked, so the tokens do not sort as
// they were issued, as a counter's or a clock's would (20 in order by
// chance: 1 in 20!).
func TestTimedTokensDoNotGrowOneAfterAnother(t *testing.T) {
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	up, down := true, true
	prev := string(newToken(at))
	for i := 1; i < 20; i++ {
		tok := string(newToken(at.Add(time.Duration(i) * time.Millisecond)))
		up, down = up && tok > prev, down && tok < prev
		prev = tok
	}
	if up || down {
		t.Errorf("20 tokens issued a millisecond apart sort as they were issued")
	}
}

// TestTimedTokenChecksumIsCRCXORConstant: the checksum of a timed token
// is the base62 of the IEEE CRC-32 of its 43 characters XOR timedCRC.
func TestTimedTokenChecksumIsCRCXORConstant(t *testing.T) {
	tok := string(newToken(time.Now()))
	secret := tok[len(TokenPrefix) : len(TokenPrefix)+secretChars]
	want := encodeChecksum(crc32.ChecksumIEEE([]byte(secret)) ^ timedCRC)
	if got := tok[len(TokenPrefix)+secretChars:]; got != string(want[:]) {
		t.Errorf("checksum %q, want %q", got, want)
	}
}

// TestTimedTokenHashLayout: a timed token hashes to its issue time in
// milliseconds, 48 bits big-endian, then the first 26 bytes of its
// SHA-256; a token of old hashes to its whole SHA-256.
func TestTimedTokenHashLayout(t *testing.T) {
	at := time.UnixMilli(1_796_000_000_123)
	tok := string(newToken(at))
	h, ok := HashToken(tok)
	if !ok {
		t.Fatalf("HashToken refused %q", tok)
	}
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(at.UnixMilli()))
	sum := sha256.Sum256([]byte(tok))
	if !bytes.Equal(h[:6], ms[2:]) || !bytes.Equal(h[6:], sum[:26]) {
		t.Errorf("hash %x, want time %x then SHA-256 prefix %x", h, ms[2:], sum[:26])
	}
	if Token(tok).Hash() != h {
		t.Errorf("Token.Hash differs from HashToken")
	}
	legacy := newSecret(TokenPrefix)
	if h, ok := HashToken(legacy); !ok || h != sha256.Sum256([]byte(legacy)) {
		t.Errorf("token of old %q: hash %x, %v; want its SHA-256", legacy, h, ok)
	}
}

// TestTimedTokenHashesSortByIssueTime: the hash of a token issued a
// millisecond later sorts after, whatever the random part, so a store's
// index of them grows at its end.
func TestTimedTokenHashesSortByIssueTime(t *testing.T) {
	at := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	prev := TokenHash{}
	for i := range 2000 {
		h := newToken(at.Add(time.Duration(i) * time.Millisecond)).Hash()
		if bytes.Compare(h[:], prev[:]) <= 0 {
			t.Fatalf("hash of the token of millisecond %d sorts before the one before it", i)
		}
		prev = h
	}
	if a, b := newToken(time.Unix(0, 0)).Hash(), newToken(time.Date(2080, 1, 1, 0, 0, 0, 0, time.UTC)).Hash(); bytes.Compare(a[:], b[:]) >= 0 {
		t.Errorf("hash of a 1970 token %x does not sort before a 2080 one's %x", a, b)
	}
}

// TestChecksumDecidesTheShape: the checksum alone says how a token is
// hashed, so 43 characters with the other shape's checksum hash to
// another value than the token itself and find no session of it (any 43
// base62 characters with either checksum are well formed; see the
// Manager's TestSwappedChecksumFindsNoSession). An API key has the
// plain checksum only.
func TestChecksumDecidesTheShape(t *testing.T) {
	swap := func(s string, sum uint32) string {
		c := encodeChecksum(sum)
		return s[:len(s)-checksumChars] + string(c[:])
	}
	secret := func(s string) string { return s[len(TokenPrefix) : len(TokenPrefix)+secretChars] }
	legacy := newSecret(TokenPrefix)
	tok := string(newToken(time.Now()))
	for name, c := range map[string]struct {
		orig, swapped string
		want          secretShape
	}{
		"legacy_with_timed_checksum": {legacy, swap(legacy, crc(secret(legacy))^timedCRC), timed},
		"timed_with_plain_checksum":  {tok, swap(tok, crc(secret(tok))), random},
	} {
		h, _ := HashToken(c.orig)
		hs, ok := HashToken(c.swapped)
		if got := shape(c.swapped, TokenPrefix); got != c.want || !ok || hs == h {
			t.Errorf("%s: shape %d, hash ok %v, same hash %v; want shape %d and another hash", name, got, ok, hs == h, c.want)
		}
	}
	key := NewAPIKey()
	if !ValidAPIKeyShape(key) || ValidAPIKeyShape(swap(key, crc(secret(key))^timedCRC)) {
		t.Errorf("an API key is valid only with its plain checksum: got %v and %v", ValidAPIKeyShape(key), ValidAPIKeyShape(swap(key, crc(secret(key))^timedCRC)))
	}
}

// TestCacheSpreadsTimedTokensOverShards: 10,000 tokens issued in the
// same millisecond, whose hashes share their first six bytes, land in
// nearly every shard.
func TestCacheSpreadsTimedTokensOverShards(t *testing.T) {
	c := newCache(1000)
	at := time.Now()
	used := map[*cacheShard]bool{}
	for range 10_000 {
		used[c.shard(newToken(at).Hash())] = true
	}
	if len(used) <= 200 {
		t.Errorf("10,000 tokens of one millisecond landed in %d of %d shards, want > 200", len(used), cacheShards)
	}
}

// TestColdTierFindsTimedHashesSharingTheirTime: sessions whose token
// hashes share the time bytes are each found in the cold tier, each
// under its own hash, and a hash differing only in its time bytes finds
// none.
func TestColdTierFindsTimedHashesSharingTheirTime(t *testing.T) {
	c := newCacheBytes(4 << 20)
	at := time.Now()
	const n = 6000
	sessions := make([]*Session, n)
	for i := range sessions {
		s := coldSession(i)
		s.TokenHash = newToken(at).Hash()
		sessions[i] = s
		c.set(s)
	}
	if hot, cold := coldCount(c); cold < n/2 || hot+cold != n {
		t.Fatalf("the cache holds %d in its map and %d cold, want most of %d cold", hot, cold, n)
	}
	for i, s := range sessions {
		got, _ := c.get(s.TokenHash)
		if got == nil || got.ID != s.ID || got.TokenHash != s.TokenHash {
			t.Fatalf("session %d: got %+v, want %s", i, got, s.ID)
		}
		other := s.TokenHash
		other[0] ^= 1 // another time, the same random bytes
		if got, _ := c.get(other); got != nil {
			t.Fatalf("session %d found under a hash of another time", i)
		}
	}
}
