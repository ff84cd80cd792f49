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

// testSignalPolicy: the tier settings of the signals are recorded with
// the session like its timeouts, and read back by every read.
func testSignalPolicy(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	s.Policy.ClientDrift, s.Policy.DriftPrefixV4, s.Policy.DriftPrefixV6 = lapse.DriftRevoke, 16, 40
	s.Policy.OnTokenReuse, s.Policy.NewDeviceWindow = lapse.ReuseRevoke, 720*time.Hour
	mustCreate(t, st, s, 0)
	byID, err := st.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	byToken, err := st.SessionByToken(ctx, s.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := st.Sessions(ctx, lapse.Filter{Subject: "alice", Now: t0})
	if err != nil || len(listed) != 1 {
		t.Fatalf("Sessions = %d sessions, %v; want 1", len(listed), err)
	}
	for name, got := range map[string]*lapse.Session{"Session": byID, "SessionByToken": byToken, "Sessions": listed[0]} {
		p := got.Policy
		if p.ClientDrift != lapse.DriftRevoke || p.DriftPrefixV4 != 16 || p.DriftPrefixV6 != 40 || p.OnTokenReuse != lapse.ReuseRevoke || p.NewDeviceWindow != 720*time.Hour {
			t.Errorf("%s: signal settings %q /%d /%d %q %v; want revoke /16 /40 revoke 720h", name,
				p.ClientDrift, p.DriftPrefixV4, p.DriftPrefixV6, p.OnTokenReuse, p.NewDeviceWindow)
		}
	}
}
