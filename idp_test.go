package lapse_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

const issuer = "https://idp.example.com"

func TestCreateRecordsTheIdPSessionAndAnEarlierAuthentication(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	idp := lapse.IdPSession{Issuer: issuer, Subject: "u1", SID: "s1"}
	_, s := f.create(t, lapse.CreateParams{IdP: idp, AuthenticatedAt: now.Add(-10 * time.Minute)})
	if s.IdP != idp || !s.AuthenticatedAt.Equal(now.Add(-10*time.Minute)) || !s.CreatedAt.Equal(now) {
		t.Errorf("session idp %+v authenticated %v created %v; want %+v, 10 minutes ago, now", s.IdP, s.AuthenticatedAt, s.CreatedAt, idp)
	}
	// An authentication time in the future is now.
	_, s = f.create(t, lapse.CreateParams{AuthenticatedAt: now.Add(time.Hour)})
	if !s.AuthenticatedAt.Equal(now) {
		t.Errorf("a future authentication time gave %v, want now %v", s.AuthenticatedAt, now)
	}
	for _, bad := range []lapse.IdPSession{{Issuer: issuer}, {Subject: "u1"}, {Issuer: issuer, Subject: "u1", SID: "a\nb"}, {Issuer: issuer, Subject: strings.Repeat("x", 300)}} {
		if _, _, err := f.m.Create(ctx, lapse.CreateParams{Subject: "alice", IdP: bad}); lapse.ErrorCode(err) != lapse.CodeInvalid {
			t.Errorf("Create with idp %+v: %v, want %s", bad, err, lapse.CodeInvalid)
		}
	}
}

func TestStepUpAtRecordsTheIdPsAuthenticationTime(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 1})
	f.clock.Advance(4 * time.Minute)
	at := f.clock.Now().Add(-14 * time.Minute)
	newTok, s, err := f.m.StepUpAt(ctx, tok.Reveal(), 2, []string{"pwd", "otp"}, lapse.ActorIdP, at)
	if err != nil {
		t.Fatal(err)
	}
	if !s.AuthenticatedAt.Equal(at) {
		t.Errorf("authenticated %v, want the IdP's %v", s.AuthenticatedAt, at)
	}
	// The tier's 15-minute age limit counts from the IdP's authentication.
	f.clock.Advance(time.Minute - time.Nanosecond)
	if _, err := f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatalf("just under 15 minutes after the IdP's authentication: %v", err)
	}
	f.clock.Advance(time.Nanosecond)
	_, err = f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "15 minutes after the IdP's authentication", err, lapse.CodeStepUpRequired)
}

func TestEndIdPRevokesTheSessionsOfTheIdPSessionOrAccount(t *testing.T) {
	f := newFixture(t)
	mk := func(subject string, idp lapse.IdPSession) string {
		_, s := f.create(t, lapse.CreateParams{Subject: subject, IdP: idp})
		return s.ID
	}
	s1 := mk("alice", lapse.IdPSession{Issuer: issuer, Subject: "u1", SID: "s1"})
	s2 := mk("alice@example.com", lapse.IdPSession{Issuer: issuer, Subject: "u1", SID: "s2"})
	other := mk("bob", lapse.IdPSession{Issuer: issuer, Subject: "u2", SID: "s3"})
	local := mk("alice", lapse.IdPSession{})

	if _, err := f.m.EndIdP(ctx, lapse.IdPSession{Issuer: issuer}); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Errorf("EndIdP with neither sub nor sid: %v, want %s", err, lapse.CodeInvalid)
	}
	if n, err := f.m.EndIdP(ctx, lapse.IdPSession{Issuer: issuer, SID: "s1"}); err != nil || n != 1 {
		t.Fatalf("EndIdP(sid s1) = %d, %v; want 1", n, err)
	}
	if n, err := f.m.EndIdP(ctx, lapse.IdPSession{Issuer: issuer, Subject: "u1"}); err != nil || n != 1 {
		t.Fatalf("EndIdP(sub u1) = %d, %v; want 1 (s1 already ended)", n, err)
	}
	for id, want := range map[string]lapse.Status{s1: lapse.StatusRevoked, s2: lapse.StatusRevoked, other: lapse.StatusActive, local: lapse.StatusActive} {
		s, err := f.m.Session(ctx, id)
		if err != nil || s.Status != want || (want == lapse.StatusRevoked && s.EndReason != lapse.ReasonIdPLogout) {
			t.Errorf("session %s: %s (%s), %v; want %s", id, s.Status, s.EndReason, err, want)
		}
	}
	evs, err := f.store.QueryEvents(ctx, lapse.EventQuery{SessionID: s2, Types: []lapse.EventType{lapse.EventRevoked}})
	if err != nil || len(evs) != 1 || evs[0].Actor != lapse.ActorIdP || evs[0].Reason != lapse.ReasonIdPLogout {
		t.Errorf("events of the revoke: %+v, %v; want one by idp with idp_logout", evs, err)
	}
}

// TestEndIdPStaysInItsNamespace: the provider's logout received by the
// console's manager (lapse's own namespace) ends the operator's session
// of that provider account, not the platform user's of the same account,
// and the other way round.
func TestEndIdPStaysInItsNamespace(t *testing.T) {
	f := newFixture(t)
	own, err := lapse.New(lapse.Config{Store: f.store, Policy: f.m.Policy(), Clock: f.clock, Reserved: true, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	acct := lapse.IdPSession{Issuer: issuer, Subject: "u1"}
	_, user := f.create(t, lapse.CreateParams{Subject: "alice", IdP: acct})
	_, op := create(t, own, lapse.CreateParams{Subject: lapse.ReservedPrefix + "console:operator:idp-x", IdP: acct})
	if n, err := own.EndIdP(ctx, acct); err != nil || n != 1 {
		t.Fatalf("the console's EndIdP = %d, %v; want 1 (the operator's session)", n, err)
	}
	if s, _ := f.m.Session(ctx, user.ID); s.Status != lapse.StatusActive {
		t.Errorf("the console's logout ended the platform user's session (%s)", s.Status)
	}
	if s, _ := own.Session(ctx, op.ID); s.Status != lapse.StatusRevoked {
		t.Errorf("the operator's session is %s, want revoked", s.Status)
	}
	if n, err := f.m.EndIdP(ctx, acct); err != nil || n != 1 {
		t.Errorf("the platform's EndIdP = %d, %v; want 1 (the user's session only)", n, err)
	}
}
