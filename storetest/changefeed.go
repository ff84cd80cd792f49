package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// feedGuard bounds every wait on a change feed. It is a guard against
// "never", not a latency bound: the machine running the suite may be
// busy.
const feedGuard = 30 * time.Second

// feed is a running Changes of one store value.
type feed struct {
	changes chan lapse.Change
	done    chan error
	stop    context.CancelFunc
}

// follow starts st's Changes and waits until it is live: its first item
// must be a reset.
func follow(t *testing.T, st lapse.Store) *feed {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	f := &feed{changes: make(chan lapse.Change, 100000), done: make(chan error, 1), stop: stop}
	go func() { f.done <- st.(lapse.ChangeFeed).Changes(ctx, func(c lapse.Change) { f.changes <- c }) }()
	t.Cleanup(func() {
		stop()
		<-f.done
	})
	select {
	case c := <-f.changes:
		if !c.Reset {
			t.Fatalf("the first item of the feed is %+v, want Change{Reset: true}", c)
		}
	case err := <-f.done:
		t.Fatalf("Changes returned before it was live: %v", err)
	case <-time.After(feedGuard):
		t.Fatalf("Changes did not go live within %v", feedGuard)
	}
	return f
}

// until reads the feed until pick says it is done, and returns what it
// read before that item.
func (f *feed) until(t *testing.T, what string, done func(lapse.Change) bool) []lapse.Change {
	t.Helper()
	var seen []lapse.Change
	timeout := time.After(feedGuard)
	for {
		select {
		case c := <-f.changes:
			if done(c) {
				return seen
			}
			seen = append(seen, c)
		case err := <-f.done:
			t.Fatalf("Changes returned while waiting for %s: %v", what, err)
		case <-timeout:
			t.Fatalf("%s did not arrive within %v", what, feedGuard)
		}
	}
}

// await reads the feed until every token of want has arrived.
func (f *feed) await(t *testing.T, what string, want ...lapse.TokenHash) {
	t.Helper()
	left := map[lapse.TokenHash]bool{}
	for _, h := range want {
		left[h] = true
	}
	f.until(t, what, func(c lapse.Change) bool {
		delete(left, c.Token)
		return len(left) == 0
	})
}

// testFeedDelivers holds that every kind of change made through one
// store value reaches the feed of another, after the reset that says the
// feed is live.
func testFeedDelivers(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func())) {
	a, b, _ := nodes(t)
	f := follow(t, b)
	revoked := newSession("alice", "acme", "standard", t0)
	touched := newSession("bob", "acme", "standard", t0)
	rotated := newSession("carol", "acme", "standard", t0)
	for _, s := range []*lapse.Session{revoked, touched, rotated} {
		mustCreate(t, a, s, 0)
	}
	if _, changed, err := a.End(ctx, revoked.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: t0.Add(time.Minute)}); err != nil || !changed {
		t.Fatalf("End: %v, %v", changed, err)
	}
	f.await(t, "the revoke made through the other store value", revoked.TokenHash)
	at := t0.Add(2 * time.Minute)
	if _, err := a.Touch(ctx, touched, at, at.Add(10*time.Minute), at.Add(9*time.Minute), false); err != nil {
		t.Fatal(err)
	}
	f.await(t, "the touch", touched.TokenHash)
	newHash := lapse.NewToken().Hash()
	if _, err := a.Rotate(ctx, rotated.ID, lapse.Rotation{OldHash: rotated.TokenHash, NewHash: newHash, AAL: 2, AMR: []string{"pwd", "otp"}, Now: at, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	f.await(t, "the rotation's old and new token", rotated.TokenHash, newHash)

	// Many sessions ended in one change: every token arrives, however the
	// store batches them.
	var many []lapse.TokenHash
	for i := range 300 {
		s := newSession("dave", "acme", "standard", t0.Add(time.Duration(i)*time.Millisecond))
		mustCreate(t, a, s, 0)
		many = append(many, s.TokenHash)
	}
	ended, err := a.EndMatching(ctx, lapse.Filter{Subject: "dave", Tenant: "acme"}, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogoutAll, Now: at})
	if err != nil || len(ended) != len(many) {
		t.Fatalf("EndMatching ended %d, %v; want %d", len(ended), err, len(many))
	}
	f.await(t, "the tokens of 300 sessions ended at once", many...)

	// Sessions a limit ends.
	old := newSession("erin", "acme", "standard", t0)
	mustCreate(t, a, old, 0)
	mustCreate(t, a, newSession("erin", "acme", "standard", t0.Add(time.Second)), 1)
	f.await(t, "the session a limit ended", old.TokenHash)

	if _, ok := a.(lapse.ExpiryIndex); ok {
		due := newSession("frank", "acme", "standard", t0)
		mustCreate(t, a, due, 0)
		if got, err := a.(lapse.ExpiryIndex).ExpireDue(ctx, due.IdleExpiresAt, 10); err != nil || len(got) == 0 {
			t.Fatalf("ExpireDue = %d, %v", len(got), err)
		}
		f.await(t, "the session a sweep expired", due.TokenHash)
	}
}

// testFeedMark holds that a mark comes after every change committed
// before it was sent, and that a feed delivers only its own store
// value's marks.
func testFeedMark(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func())) {
	a, b, _ := nodes(t)
	f := follow(t, b)
	var want []lapse.TokenHash
	for i := range 50 {
		s := newSession(fmt.Sprintf("user%d", i), "", "standard", t0)
		mustCreate(t, a, s, 0)
		if _, _, err := a.End(ctx, s.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonAdmin, Now: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, s.TokenHash)
	}
	if err := a.(lapse.ChangeFeed).Mark(ctx, 41); err != nil { // another node's mark
		t.Fatal(err)
	}
	if err := b.(lapse.ChangeFeed).Mark(ctx, 42); err != nil {
		t.Fatal(err)
	}
	before := f.until(t, "mark 42", func(c lapse.Change) bool { return c.Mark == 42 })
	seen := map[lapse.TokenHash]bool{}
	for _, c := range before {
		if c.Mark != 0 {
			t.Errorf("the feed delivered mark %d, sent by another store value", c.Mark)
		}
		seen[c.Token] = true
	}
	for i, h := range want {
		if !seen[h] {
			t.Fatalf("the revoke of session %d, committed before the mark was sent, arrived after it", i)
		}
	}
	// Marks of one store value come in the order they were sent.
	for id := uint64(100); id < 105; id++ {
		if err := b.(lapse.ChangeFeed).Mark(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(100); id < 105; id++ {
		f.until(t, fmt.Sprintf("mark %d", id), func(c lapse.Change) bool {
			if c.Mark != 0 && c.Mark != id {
				t.Fatalf("mark %d arrived while mark %d was awaited", c.Mark, id)
			}
			return c.Mark == id
		})
	}
}

// testFeedLost holds that Changes returns ctx's error when cancelled, and
// store_unavailable when the backing service goes away.
func testFeedLost(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func())) {
	_, b, down := nodes(t)
	cancelled := follow(t, b)
	cancelled.stop()
	select {
	case err := <-cancelled.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Changes after its context was cancelled = %v, want context.Canceled", err)
		}
		cancelled.done <- err // for the cleanup
	case <-time.After(feedGuard):
		t.Fatalf("Changes did not return within %v of its context's cancel", feedGuard)
	}

	f := follow(t, b)
	down()
	select {
	case err := <-f.done:
		if got := lapse.ErrorCode(err); got != lapse.CodeStoreUnavailable {
			t.Errorf("Changes with the service gone returned code %q (%v), want %q", got, err, lapse.CodeStoreUnavailable)
		}
		f.done <- err
	case <-time.After(feedGuard):
		t.Fatalf("Changes did not return within %v of the service going away", feedGuard)
	}
	if err := b.(lapse.ChangeFeed).Mark(ctx, 1); lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Errorf("Mark with the service gone = %v, want %s", err, lapse.CodeStoreUnavailable)
	}
}
