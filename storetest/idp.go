package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func testRotateAuthenticatedAt(t *testing.T, st lapse.Store) {
	s := newSession("alice", "", "standard", t0)
	mustCreate(t, st, s, 0)
	now, authed := t0.Add(10*time.Minute-time.Second), t0.Add(5*time.Minute)
	got, err := st.Rotate(ctx, s.ID, lapse.Rotation{OldHash: s.TokenHash, NewHash: lapse.NewToken().Hash(), AAL: 2,
		Actor: lapse.ActorIdP, Now: now, AuthenticatedAt: authed, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	read, err := st.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*lapse.Session{"Rotate": got, "Session": read} {
		if !s.AuthenticatedAt.Equal(authed) || !s.LastActiveAt.Equal(now) || !s.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("%s: authenticated %v, active %v, absolute %v; want authenticated at %v, active and timers from %v",
				name, s.AuthenticatedAt, s.LastActiveAt, s.ExpiresAt, authed, now)
		}
	}
}

func testIdPIndex(t *testing.T, st lapse.Store) {
	const a, b = "https://a.example", "https://b.example"
	mk := func(subject string, idp lapse.IdPSession) *lapse.Session {
		s := newSession(subject, "", "standard", t0)
		s.IdP = idp
		mustCreate(t, st, s, 0)
		return s
	}
	a1 := mk("alice", lapse.IdPSession{Issuer: a, Subject: "u1", SID: "s1"})
	a2 := mk("alice@example.com", lapse.IdPSession{Issuer: a, Subject: "u1", SID: "s2"})
	mk("alice", lapse.IdPSession{Issuer: b, Subject: "u1", SID: "s1"})
	mk("alice", lapse.IdPSession{})
	mk("bob", lapse.IdPSession{Issuer: a, Subject: "u2", SID: "s3"})
	ended := mk("alice", lapse.IdPSession{Issuer: a, Subject: "u1", SID: "s1"})
	if _, _, err := st.End(ctx, ended.ID, lapse.Ending{Status: lapse.StatusRevoked, Reason: lapse.ReasonLogout, Actor: lapse.ActorSubject, Now: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	idx := st.(lapse.IdPIndex)
	for _, c := range []struct {
		q    lapse.IdPSession
		want []string
	}{
		{lapse.IdPSession{Issuer: a, Subject: "u1"}, []string{a1.ID, a2.ID}},
		{lapse.IdPSession{Issuer: a, SID: "s1"}, []string{a1.ID}},
		{lapse.IdPSession{Issuer: a, Subject: "u1", SID: "s2"}, []string{a2.ID}},
		{lapse.IdPSession{Issuer: a, Subject: "u2", SID: "s1"}, nil},
		{lapse.IdPSession{Issuer: a}, nil},
		{lapse.IdPSession{Subject: "u1", SID: "s1"}, nil},
		{lapse.IdPSession{Issuer: "https://c.example", Subject: "u1"}, nil},
	} {
		got, err := idx.SessionsByIdP(ctx, c.q)
		if err != nil {
			t.Fatalf("SessionsByIdP(%+v): %v", c.q, err)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
			if s.Status != lapse.StatusActive || !c.q.Matches(s.IdP) {
				t.Errorf("SessionsByIdP(%+v) returned %s: status %s, idp %+v", c.q, s.ID, s.Status, s.IdP)
			}
		}
		slices.Sort(ids)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("SessionsByIdP(%+v) = %v, want %v", c.q, ids, want)
		}
	}
}

func testFirstUse(t *testing.T, st lapse.Store) {
	g := st.(lapse.ReplayGuard)
	use := func(key string, until, now time.Time, want bool) {
		t.Helper()
		got, err := g.FirstUse(ctx, key, until, now)
		if err != nil || got != want {
			t.Fatalf("FirstUse(%s, until %v, now %v) = %v, %v; want %v", key, until.Sub(t0), now.Sub(t0), got, err, want)
		}
	}
	until := t0.Add(5 * time.Minute)
	use("oidc:jti-1", until, t0, true)
	use("oidc:jti-1", until, t0.Add(time.Minute), false)
	use("oidc:jti-1", until, until.Add(-time.Nanosecond), false)
	use("oidc:jti-2", until, t0.Add(time.Minute), true)
	// Past its until, a key is unused again: its use is taken over.
	use("oidc:jti-1", until.Add(5*time.Minute), until, true)
	use("oidc:jti-1", until.Add(5*time.Minute), until.Add(time.Minute), false)
	if _, err := g.FirstUse(ctx, strings.Repeat("k", lapse.MaxReplayKey+1), until, t0); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Errorf("a key of %d bytes: %v, want %s", lapse.MaxReplayKey+1, err, lapse.CodeInvalid)
	}
}

func testFirstUseConcurrent(t *testing.T, st lapse.Store) {
	g := st.(lapse.ReplayGuard)
	for round := range 3 {
		key := fmt.Sprintf("race-%d", round)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				ok, err := g.FirstUse(ctx, key, t0.Add(time.Hour), t0)
				if err != nil {
					t.Errorf("FirstUse: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Errorf("round %d: %d of 12 concurrent uses of one key were first, want 1", round, n)
		}
	}
}

func testFirstUseNodes(t *testing.T, nodes func(t *testing.T) (a, b lapse.Store, down func())) {
	a, b, _ := nodes(t)
	ga, gb := a.(lapse.ReplayGuard), b.(lapse.ReplayGuard)
	until := t0.Add(time.Hour)
	for _, c := range []struct {
		g    lapse.ReplayGuard
		node string
		key  string
		want bool
	}{
		{ga, "a", "jti-1", true}, {gb, "b", "jti-1", false},
		{gb, "b", "jti-2", true}, {ga, "a", "jti-2", false},
	} {
		got, err := c.g.FirstUse(ctx, c.key, until, t0)
		if err != nil || got != c.want {
			t.Errorf("node %s: FirstUse(%s) = %v, %v; want %v", c.node, c.key, got, err, c.want)
		}
	}
}
