package lapse

import (
	"fmt"
	"strings"
	"testing"
)

func TestCacheKeepsAnEndedSessionEnded(t *testing.T) {
	c := newCache(1000)
	active := &Session{ID: "ses_a", TokenHash: HashSecret("a"), Status: StatusActive}
	revoked := *active
	revoked.Status = StatusRevoked
	c.set(&revoked)
	c.set(active) // a late write of a state read before the revoke
	got, epoch := c.get(active.TokenHash)
	if got.Status != StatusRevoked {
		t.Fatalf("a late active write replaced the revoked entry")
	}
	c.putIf(active.TokenHash, active, epoch)
	if got, _ := c.get(active.TokenHash); got.Status != StatusRevoked {
		t.Fatalf("a fill replaced the revoked entry")
	}
	other := &Session{ID: "ses_b", TokenHash: active.TokenHash, Status: StatusActive}
	c.set(other)
	if got, _ := c.get(active.TokenHash); got.ID != "ses_b" {
		t.Errorf("another session under the same key was refused")
	}
}

// cacheBytes returns the entries of c and the bytes it accounts them.
func cacheBytes(c *cache) (n int, bytes int64) {
	for i := range c.shards {
		n += len(c.shards[i].m)
		bytes += c.shards[i].bytes
	}
	return n, bytes
}

// TestCacheBoundedByMemory: a cache sized by memory holds sessions up to
// its bound and no further, evicting others to take new ones, and its
// account of the bytes it holds follows every insert, replacement and
// removal.
func TestCacheBoundedByMemory(t *testing.T) {
	sess := func(i int) *Session {
		return &Session{ID: fmt.Sprintf("ses_%06d", i), TokenHash: HashSecret(fmt.Sprint(i)), Subject: "alice",
			Tier: "standard", Status: StatusActive, AMR: []string{"pwd"}, UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}
	}
	size := entrySize(sess(0))
	const budget = 1 << 20
	c := newCacheBytes(budget)
	for i := range 4 * budget / int(size) {
		c.set(sess(i))
	}
	n, bytes := cacheBytes(c)
	if bytes > budget {
		t.Errorf("the cache holds %d bytes, past its bound of %d", bytes, budget)
	}
	if want := int(budget / size); n < want*3/4 {
		t.Errorf("the cache holds %d sessions of %d bytes, want about %d in %d bytes", n, size, want, budget)
	}
	if bytes != int64(n)*size {
		t.Errorf("the cache accounts %d bytes for %d entries of %d", bytes, n, size)
	}
	for i := range 4 * budget / int(size) {
		s := sess(i)
		s.Status = StatusRevoked
		c.set(s) // replaces or evicts
		c.forget(s.TokenHash)
	}
	if n, bytes := cacheBytes(c); n != 0 || bytes != 0 {
		t.Errorf("after forgetting every session the cache holds %d entries, %d bytes", n, bytes)
	}
}

// TestEntrySizeCountsStrings: a session's estimate grows with its
// strings, so a long user agent or metadata takes its share of the bound.
func TestEntrySizeCountsStrings(t *testing.T) {
	small := &Session{ID: "ses_a"}
	big := &Session{ID: "ses_a", UserAgent: strings.Repeat("x", 1000), Metadata: []byte(strings.Repeat("y", 1000))}
	if d := entrySize(big) - entrySize(small); d < 2000 {
		t.Errorf("2000 bytes of user agent and metadata add %d bytes to the estimate", d)
	}
}
