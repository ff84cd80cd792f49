package lapse_test

import (
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

// TestReservedNamespaceKeepsOperatorsApart: a platform user whose subject
// is an operator's ("lapse:console-admin") can neither create a session
// as that subject nor see, verify or end an operator's session through
// the platform's manager; the operators' manager, on the same store, can.
func TestReservedNamespaceKeepsOperatorsApart(t *testing.T) {
	f := newFixture(t)
	platform := f.m
	own, err := lapse.New(lapse.Config{Store: f.store, Policy: lapsetest.Policy(), Clock: f.clock, Reserved: true})
	if err != nil {
		t.Fatal(err)
	}
	const operator = lapse.ReservedPrefix + "console-admin"
	if _, _, err := platform.Create(ctx, lapse.CreateParams{Subject: operator}); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Fatalf("platform Create(%q) = %v, want invalid_request", operator, err)
	}
	if _, _, err := own.Create(ctx, lapse.CreateParams{Subject: "alice"}); lapse.ErrorCode(err) != lapse.CodeInvalid {
		t.Fatalf("operators' Create(alice) = %v, want invalid_request", err)
	}
	opTok, opSess, err := own.Create(ctx, lapse.CreateParams{Subject: operator})
	if err != nil {
		t.Fatal(err)
	}
	aliceTok, alice, err := platform.Create(ctx, lapse.CreateParams{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("platform_cannot_see_an_operator_session", func(t *testing.T) {
		if _, err := platform.Verify(ctx, opTok.Reveal(), lapse.VerifyOptions{}); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("Verify(operator token) = %v, want session_not_found", err)
		}
		if _, err := platform.Current(ctx, opTok.Reveal()); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("Current(operator token) = %v, want session_not_found", err)
		}
		if _, err := platform.Session(ctx, opSess.ID); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("Session(operator id) = %v, want session_not_found", err)
		}
		if ss, err := platform.Sessions(ctx, lapse.Filter{Subject: operator, AnyTenant: true, IncludeEnded: true}); err != nil || len(ss) != 0 {
			t.Errorf("Sessions(operator) = %d, %v; want none", len(ss), err)
		}
		for _, q := range []lapse.SessionQuery{{}, {Subject: operator}, {Tier: opSess.Tier}} {
			ss, err := platform.ListSessions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if s.ID == opSess.ID {
					t.Errorf("ListSessions(%+v) lists the operator's session", q)
				}
			}
		}
	})
	t.Run("platform_cannot_end_an_operator_session", func(t *testing.T) {
		if _, err := platform.End(ctx, opSess.ID, lapse.ReasonAdmin, lapse.ActorAPI); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("End(operator id) = %v, want session_not_found", err)
		}
		if n, err := platform.EndMatching(ctx, lapse.Filter{Subject: operator, AnyTenant: true}, lapse.ReasonLogoutAll, lapse.ActorSubject); err != nil || n != 0 {
			t.Errorf("EndMatching(operator) = %d, %v; want 0", n, err)
		}
		if err := platform.Revoke(ctx, opTok.Reveal()); err != nil {
			t.Errorf("Revoke(operator token) = %v, want nil (unknown)", err)
		}
		if _, _, err := platform.StepUp(ctx, opTok.Reveal(), 2, []string{"otp"}, lapse.ActorAPI); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("StepUp(operator token) = %v, want session_not_found", err)
		}
		if s, err := own.Verify(ctx, opTok.Reveal(), lapse.VerifyOptions{}); err != nil || s.Status != lapse.StatusActive {
			t.Fatalf("the operator's session after the platform's attempts: %v, %v; want active", s.Status, err)
		}
	})
	t.Run("operators_manager_cannot_reach_platform_sessions", func(t *testing.T) {
		if _, err := own.Verify(ctx, aliceTok.Reveal(), lapse.VerifyOptions{}); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("operators' Verify(alice's token) = %v, want session_not_found", err)
		}
		if _, err := own.End(ctx, alice.ID, lapse.ReasonAdmin, "console"); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("operators' End(alice) = %v, want session_not_found", err)
		}
		ss, err := own.ListSessions(ctx, lapse.SessionQuery{})
		if err != nil || len(ss) != 1 || ss[0].ID != opSess.ID {
			t.Errorf("operators' ListSessions = %d sessions, %v; want only the operator's", len(ss), err)
		}
		if _, err := platform.Verify(ctx, aliceTok.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Errorf("alice's session after the operators' attempts: %v", err)
		}
	})
	t.Run("operators_manager_ends_its_own", func(t *testing.T) {
		if _, err := own.End(ctx, opSess.ID, lapse.ReasonLogout, lapse.ActorSubject); err != nil {
			t.Fatal(err)
		}
		if _, err := own.Verify(ctx, opTok.Reveal(), lapse.VerifyOptions{}); lapse.ErrorCode(err) != lapse.CodeSessionRevoked {
			t.Errorf("Verify after the operator signed out = %v, want session_revoked", err)
		}
	})
}
