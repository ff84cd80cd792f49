package lapse

import "testing"

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
