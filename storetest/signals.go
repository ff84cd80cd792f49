package storetest

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// testRotateClient: a rotation that names a client makes it the
// session's (the drift step-up's answer); one that names none keeps the
// session's.
func testRotateClient(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	s.IP, s.UserAgent = "192.0.2.10", "Firefox/133.0 (Windows)"
	mustCreate(t, st, s, 0)
	now := t0.Add(time.Minute)
	h1 := lapse.NewToken().Hash()
	if _, err := st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: s.TokenHash, NewHash: h1, AAL: 1, Actor: lapse.ActorSubject,
		Now: now, Grace: time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Session(ctx, s.ID); err != nil || got.IP != s.IP || got.UserAgent != s.UserAgent {
		t.Fatalf("after a rotation with no client: ip %q ua %q (%v); want the session's %q %q", got.IP, got.UserAgent, err, s.IP, s.UserAgent)
	}
	got, err := st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: h1, NewHash: lapse.NewToken().Hash(), AAL: 1, Actor: lapse.ActorSubject,
		Now: now.Add(time.Minute), Grace: time.Second, IP: "198.51.100.7", UserAgent: "Chrome/131.0 (Android)"})
	if err != nil {
		t.Fatal(err)
	}
	read, err := st.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*lapse.Session{"Rotate": got, "Session": read} {
		if s.IP != "198.51.100.7" || s.UserAgent != "Chrome/131.0 (Android)" {
			t.Errorf("%s after a rotation from a new client: ip %q ua %q; want the new client's", name, s.IP, s.UserAgent)
		}
	}
}
