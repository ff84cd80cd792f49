package lapse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

var ctx = context.Background()

// fixture is a manager on the test policy, a fake clock and a memory
// store.
type fixture struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	store *lapsetest.Store
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	m, clock, st := lapsetest.NewManager(t, lapse.Config{})
	return &fixture{m: m, clock: clock, store: st}
}

func (f *fixture) create(t testing.TB, p lapse.CreateParams) (lapse.Token, *lapse.Session) {
	t.Helper()
	return create(t, f.m, p)
}

// create makes a session with m, of subject alice unless p names one.
func create(t testing.TB, m *lapse.Manager, p lapse.CreateParams) (lapse.Token, *lapse.Session) {
	t.Helper()
	if p.Subject == "" {
		p.Subject = "alice"
	}
	tok, s, err := m.Create(ctx, p)
	if err != nil {
		t.Fatalf("Create(%+v): %v", p, err)
	}
	return tok, s
}

func wantCode(t *testing.T, what string, err error, want lapse.Code) {
	t.Helper()
	if got := lapse.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (err %v), want %q", what, got, err, want)
	}
}

func TestCreate(t *testing.T) {
	t.Run("default_tier_deadlines_and_warning", func(t *testing.T) {
		f := newFixture(t)
		now := f.clock.Now()
		tok, s := f.create(t, lapse.CreateParams{})
		if s.Tier != "standard" || s.AAL != 1 || s.Status != lapse.StatusActive {
			t.Errorf("tier %q aal %d status %s, want standard 1 active", s.Tier, s.AAL, s.Status)
		}
		if !s.IdleExpiresAt.Equal(now.Add(30*time.Minute)) || !s.ExpiresAt.Equal(now.Add(12*time.Hour)) {
			t.Errorf("deadlines idle %v absolute %v, want +30m and +12h", s.IdleExpiresAt.Sub(now), s.ExpiresAt.Sub(now))
		}
		if !s.WarnAt.Equal(now.Add(28 * time.Minute)) {
			t.Errorf("warn_at %v after creation, want 28m (2m before the idle deadline)", s.WarnAt.Sub(now))
		}
		if _, err := lapse.ParseToken(tok.Reveal()); err != nil || s.TokenHash != tok.Hash() {
			t.Errorf("the token returned does not parse or hash to the session")
		}
	})
	t.Run("tenant_override_applies", func(t *testing.T) {
		f := newFixture(t)
		now := f.clock.Now()
		_, s := f.create(t, lapse.CreateParams{Tenant: "acme"})
		if got := s.IdleExpiresAt.Sub(now); got != 10*time.Minute {
			t.Errorf("acme's standard idle timeout = %v, want its override 10m", got)
		}
	})
	t.Run("idle_deadline_never_past_absolute", func(t *testing.T) {
		p := &lapse.Policy{DefaultTier: "t", Tiers: map[string]lapse.Tier{"t": {IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour}}}
		m, _, _ := lapsetest.NewManager(t, lapse.Config{Policy: p})
		_, s := create(t, m, lapse.CreateParams{Subject: "a"})
		if s.IdleExpiresAt.After(s.ExpiresAt) {
			t.Errorf("idle deadline %v is after the absolute deadline %v", s.IdleExpiresAt, s.ExpiresAt)
		}
	})
	for _, c := range []struct {
		name string
		p    lapse.CreateParams
		want lapse.Code
	}{
		{"missing_subject_is_invalid", lapse.CreateParams{}, lapse.CodeInvalid},
		{"control_character_in_subject_is_invalid", lapse.CreateParams{Subject: "a\nb"}, lapse.CodeInvalid},
		{"aal_4_is_invalid", lapse.CreateParams{Subject: "a", AAL: 4}, lapse.CodeInvalid},
		{"bad_ip_is_invalid", lapse.CreateParams{Subject: "a", IP: "300.1.1.1"}, lapse.CodeInvalid},
		{"metadata_not_an_object_is_invalid", lapse.CreateParams{Subject: "a", Metadata: json.RawMessage(`[1]`)}, lapse.CodeInvalid},
		{"unknown_tier", lapse.CreateParams{Subject: "a", Tier: "gold"}, lapse.CodeUnknownTier},
		{"unknown_tenant", lapse.CreateParams{Subject: "a", Tenant: "initech"}, lapse.CodeUnknownTenant},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := newFixture(t).m.Create(ctx, c.p)
			wantCode(t, "Create", err, c.want)
		})
	}
}

func TestVerify(t *testing.T) {
	const idle, abs = 30 * time.Minute, 12 * time.Hour
	for _, c := range []struct {
		name string
		tier string
		aal  int
		// steps advance the clock and verify with touch, before the check
		steps []time.Duration
		at    time.Duration // from the last step to the checked verify
		opts  lapse.VerifyOptions
		want  lapse.Code
	}{
		{name: "fresh_session_is_valid", at: 0},
		{name: "just_before_idle_deadline_is_valid", at: idle - time.Nanosecond},
		{name: "at_idle_deadline_is_expired_idle", at: idle, want: lapse.CodeSessionExpiredIdle},
		{name: "activity_slides_idle_deadline", steps: []time.Duration{20 * time.Minute}, at: 25 * time.Minute},
		{name: "status_check_without_touch_does_not_slide", steps: nil, at: 31 * time.Minute, want: lapse.CodeSessionExpiredIdle},
		{name: "activity_never_passes_absolute_deadline",
			steps: repeat(25*time.Minute, 28), at: abs - 28*25*time.Minute, want: lapse.CodeSessionExpiredAbsolute},
		{name: "just_before_absolute_deadline_with_activity_is_valid",
			steps: repeat(25*time.Minute, 28), at: abs - 28*25*time.Minute - time.Nanosecond},
		{name: "tier_aal_not_met_needs_step_up", tier: "sensitive", aal: 1, want: lapse.CodeStepUpRequired},
		{name: "tier_aal_met_is_valid", tier: "sensitive", aal: 2},
		{name: "call_aal_above_session_needs_step_up", aal: 2, opts: lapse.VerifyOptions{RequireAAL: 3}, want: lapse.CodeStepUpRequired},
		{name: "tier_auth_age_just_under_limit_is_valid", tier: "sensitive", aal: 2,
			steps: []time.Duration{4 * time.Minute, 4 * time.Minute, 4 * time.Minute}, at: 3*time.Minute - time.Nanosecond},
		{name: "tier_auth_age_at_limit_needs_step_up", tier: "sensitive", aal: 2,
			steps: []time.Duration{4 * time.Minute, 4 * time.Minute, 4 * time.Minute}, at: 3 * time.Minute, want: lapse.CodeStepUpRequired},
		{name: "call_auth_age_tighter_than_tier_needs_step_up", at: 5 * time.Minute,
			opts: lapse.VerifyOptions{MaxAuthAge: 5 * time.Minute}, want: lapse.CodeStepUpRequired},
		{name: "call_auth_age_just_under_is_valid", at: 5*time.Minute - time.Nanosecond,
			opts: lapse.VerifyOptions{MaxAuthAge: 5 * time.Minute}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			tok, _ := f.create(t, lapse.CreateParams{Tier: c.tier, AAL: c.aal})
			for i, d := range c.steps {
				f.clock.Advance(d)
				if _, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{}); err != nil {
					t.Fatalf("verify at step %d: %v", i, err)
				}
			}
			f.clock.Advance(c.at)
			c.opts.NoTouch = c.opts.NoTouch || c.name == "status_check_without_touch_does_not_slide"
			_, err := f.m.Verify(ctx, tok.Reveal(), c.opts)
			wantCode(t, "Verify", err, c.want)
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestVerifyRecordsExpiryAtDeadline(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{})
	f.clock.Advance(time.Hour)
	_, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "Verify after idle", err, lapse.CodeSessionExpiredIdle)
	stored, _ := f.store.Session(ctx, s.ID)
	if stored.Status != lapse.StatusExpired || stored.EndReason != lapse.ReasonIdleTimeout || !stored.EndedAt.Equal(s.IdleExpiresAt) {
		t.Errorf("stored %s/%s at %v, want expired/idle_timeout at %v", stored.Status, stored.EndReason, stored.EndedAt, s.IdleExpiresAt)
	}
	_, err = f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "Verify again", err, lapse.CodeSessionExpiredIdle)
}

func TestVerifyDebouncesActivityWrites(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{}) // idle 30m: touch interval 60s
	if got := lapse.TouchInterval(s); got != time.Minute {
		t.Fatalf("TouchInterval = %v, want 1m for a 30m idle timeout", got)
	}
	f.clock.Advance(59 * time.Second)
	f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	if stored, _ := f.store.Session(ctx, s.ID); !stored.LastActiveAt.Equal(s.LastActiveAt) {
		t.Errorf("activity 59s after the last write was written; want it debounced")
	}
	f.clock.Advance(time.Second)
	got, _ := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	stored, _ := f.store.Session(ctx, s.ID)
	if !stored.LastActiveAt.Equal(f.clock.Now()) || !got.IdleExpiresAt.Equal(f.clock.Now().Add(30*time.Minute)) {
		t.Errorf("activity 60s after the last write: stored last active %v, returned idle deadline %v; want both moved", stored.LastActiveAt, got.IdleExpiresAt)
	}
}

func TestTouch(t *testing.T) {
	// standard tier: idle 30m, warning 2m before, touch interval 1m.
	events := func(t *testing.T, f *fixture, id string) []lapse.EventType {
		t.Helper()
		evs, err := f.store.QueryEvents(ctx, lapse.EventQuery{SessionID: id})
		if err != nil {
			t.Fatal(err)
		}
		var types []lapse.EventType
		for _, ev := range evs {
			types = append(types, ev.Type)
		}
		return types
	}
	t.Run("within_the_touch_interval_writes_nothing", func(t *testing.T) {
		f := newFixture(t)
		tok, s := f.create(t, lapse.CreateParams{})
		f.clock.Advance(59 * time.Second)
		got, err := f.m.Touch(ctx, tok.Reveal())
		if err != nil || !got.LastActiveAt.Equal(s.LastActiveAt) {
			t.Fatalf("Touch = last active %v, %v; want %v unchanged", got.LastActiveAt, err, s.LastActiveAt)
		}
		if stored, _ := f.store.Session(ctx, s.ID); !stored.LastActiveAt.Equal(s.LastActiveAt) {
			t.Errorf("stored last active %v, want %v: Touch must not write more than Verify", stored.LastActiveAt, s.LastActiveAt)
		}
	})
	t.Run("past_the_interval_slides_the_deadline_without_an_event", func(t *testing.T) {
		f := newFixture(t)
		tok, s := f.create(t, lapse.CreateParams{})
		f.clock.Advance(10 * time.Minute)
		got, err := f.m.Touch(ctx, tok.Reveal())
		now := f.clock.Now()
		if err != nil || !got.LastActiveAt.Equal(now) || !got.IdleExpiresAt.Equal(now.Add(30*time.Minute)) {
			t.Fatalf("Touch = last active %v, idle deadline %v, %v; want %v and %v", got.LastActiveAt, got.IdleExpiresAt, err, now, now.Add(30*time.Minute))
		}
		if types := events(t, f, s.ID); len(types) != 1 || types[0] != lapse.EventCreated {
			t.Errorf("events %v, want only session.created: routine activity records none", types)
		}
	})
	t.Run("in_the_warning_window_records_extended", func(t *testing.T) {
		f := newFixture(t)
		tok, s := f.create(t, lapse.CreateParams{})
		f.clock.Advance(29 * time.Minute)
		if _, err := f.m.Touch(ctx, tok.Reveal()); err != nil {
			t.Fatal(err)
		}
		if types := events(t, f, s.ID); len(types) != 2 || types[1] != lapse.EventExtended {
			t.Errorf("events %v, want session.created, session.extended", types)
		}
	})
	t.Run("applies_no_assurance_rule", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 1})
		f.clock.Advance(time.Minute)
		if _, err := f.m.Touch(ctx, tok.Reveal()); err != nil {
			t.Errorf("Touch of an AAL1 session of an AAL2 tier: %v, want it recorded", err)
		}
	})
	t.Run("of_an_ended_session_fails_with_its_reason", func(t *testing.T) {
		f := newFixture(t)
		tok, s := f.create(t, lapse.CreateParams{})
		f.m.End(ctx, s.ID, lapse.ReasonAdmin, lapse.ActorAPI)
		_, err := f.m.Touch(ctx, tok.Reveal())
		var e *lapse.Error
		if !errors.As(err, &e) || e.Code != lapse.CodeSessionRevoked || e.Reason != lapse.ReasonAdmin {
			t.Errorf("Touch of a revoked session: %v, want session_revoked with reason admin", err)
		}
	})
}

func TestEndedErrorSaysWhy(t *testing.T) {
	for _, c := range []struct {
		status lapse.Status
		reason lapse.Reason
		want   lapse.Code
	}{
		{lapse.StatusRevoked, lapse.ReasonLogoutAll, lapse.CodeSessionRevoked},
		{lapse.StatusExpired, lapse.ReasonIdleTimeout, lapse.CodeSessionExpiredIdle},
		{lapse.StatusExpired, lapse.ReasonAbsoluteTimeout, lapse.CodeSessionExpiredAbsolute},
	} {
		e := lapse.EndedError(&lapse.Session{Status: c.status, EndReason: c.reason})
		if e.Code != c.want || e.Reason != c.reason {
			t.Errorf("EndedError(%s, %s) = %s with reason %q, want %s with reason %q", c.status, c.reason, e.Code, e.Reason, c.want, c.reason)
		}
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{})
	if _, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatal(err) // warms the cache
	}
	for i := range 2 {
		if err := f.m.Revoke(ctx, tok.Reveal()); err != nil {
			t.Fatalf("Revoke #%d: %v (want idempotent)", i+1, err)
		}
	}
	_, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "Verify after revoke", err, lapse.CodeSessionRevoked)
	stored, _ := f.store.Session(ctx, s.ID)
	if stored.EndReason != lapse.ReasonLogout {
		t.Errorf("end reason %q, want logout", stored.EndReason)
	}
	if err := f.m.Revoke(ctx, "lps_garbage"); err != nil {
		t.Errorf("Revoke(malformed) = %v, want nil", err)
	}
	if err := f.m.Revoke(ctx, lapse.NewToken().Reveal()); err != nil {
		t.Errorf("Revoke(unknown) = %v, want nil", err)
	}
}

func TestEnd(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{})
	f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	if _, err := f.m.End(ctx, s.ID, lapse.ReasonAdmin, lapse.ActorAPI); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "Verify after admin revoke", err, lapse.CodeSessionRevoked)
	_, err = f.m.End(ctx, "ses_unknown", lapse.ReasonAdmin, lapse.ActorAPI)
	wantCode(t, "End(unknown)", err, lapse.CodeSessionNotFound)
	_, err = f.m.End(ctx, s.ID, lapse.ReasonIdleTimeout, lapse.ActorAPI)
	wantCode(t, "End(reason idle_timeout)", err, lapse.CodeInvalid)
}

func TestEndMatchingKeepsTheCaller(t *testing.T) {
	f := newFixture(t)
	keepTok, keep := f.create(t, lapse.CreateParams{})
	otherTok, _ := f.create(t, lapse.CreateParams{})
	bobTok, _ := f.create(t, lapse.CreateParams{Subject: "bob"})
	n, err := f.m.EndMatching(ctx, lapse.Filter{Subject: "alice", AnyTenant: true, Except: keep.ID}, lapse.ReasonPasswordChange, lapse.ActorAPI)
	if err != nil || n != 1 {
		t.Fatalf("EndMatching = %d, %v; want 1 revoked", n, err)
	}
	for _, c := range []struct {
		who  string
		tok  lapse.Token
		want lapse.Code
	}{{"kept session", keepTok, ""}, {"other session", otherTok, lapse.CodeSessionRevoked}, {"bob", bobTok, ""}} {
		_, err := f.m.Verify(ctx, c.tok.Reveal(), lapse.VerifyOptions{NoTouch: true})
		wantCode(t, c.who, err, c.want)
	}
}

func TestLimitEndsOldest(t *testing.T) {
	f := newFixture(t)
	var toks []lapse.Token
	for range 4 {
		tok, _ := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 2})
		toks = append(toks, tok)
		f.clock.Advance(time.Second)
	}
	_, err := f.m.Verify(ctx, toks[0].Reveal(), lapse.VerifyOptions{})
	wantCode(t, "oldest of 4 with max_sessions 3", err, lapse.CodeSessionRevoked)
	for i, tok := range toks[1:] {
		if _, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Errorf("session %d: %v, want valid", i+1, err)
		}
	}
}

func TestSessionsShowLapsedAsExpired(t *testing.T) {
	f := newFixture(t)
	_, s := f.create(t, lapse.CreateParams{})
	f.clock.Advance(31 * time.Minute)
	got, err := f.m.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout {
		t.Errorf("lapsed session shows %s/%s, want expired/idle_timeout", got.Status, got.EndReason)
	}
	active, _ := f.m.Sessions(ctx, lapse.Filter{Subject: "alice", AnyTenant: true})
	if len(active) != 0 {
		t.Errorf("active sessions list holds %d lapsed sessions", len(active))
	}
}

func TestVerifyCacheHitDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.create(t, lapse.CreateParams{})
	raw := tok.Reveal()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := f.m.Verify(ctx, raw, lapse.VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Verify on a cache hit allocates %.1f times, want 0", allocs)
	}
}

// TestNewCacheMemory: a cache bounded by memory serves verifies like one
// bounded by count; a negative bound, or both bounds at once, is refused.
func TestNewCacheMemory(t *testing.T) {
	m, _, _ := lapsetest.NewManager(t, lapse.Config{CacheMemory: 1 << 20})
	tok, _, err := m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a miss, then a hit
		if _, err := m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{}); err != nil {
			t.Fatalf("verify with a cache of 1 MiB: %v", err)
		}
	}
	for _, cfg := range []lapse.Config{{CacheMemory: -1}, {CacheMemory: 1 << 20, CacheSize: 10}, {CacheMemory: 1 << 20, CacheSize: -1}} {
		cfg.Store, cfg.Policy = lapsetest.NewStore(), lapsetest.Policy()
		if _, err := lapse.New(cfg); lapse.ErrorCode(err) != lapse.CodeInvalid {
			t.Errorf("New with CacheMemory %d and CacheSize %d: %v, want code %s", cfg.CacheMemory, cfg.CacheSize, err, lapse.CodeInvalid)
		}
	}
}

// On a cache hit the token's alphabet and checksum are not checked
// before the lookup (its hash proves it is the token lapse issued): a
// malformed token of the right length and prefix must still be refused.
func TestVerifyRefusesAMalformedTokenWhileItsSessionIsCached(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.create(t, lapse.CreateParams{})
	raw := tok.Reveal()
	if _, err := f.m.Verify(ctx, raw, lapse.VerifyOptions{}); err != nil { // cached
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := []byte(raw)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"checksum":        flip(len(raw) - 1),
		"secret":          flip(len(lapse.TokenPrefix)),
		"alphabet":        raw[:len(lapse.TokenPrefix)] + "-" + raw[len(lapse.TokenPrefix)+1:],
		"prefix":          "xxx" + raw[3:],
		"length":          raw + "A",
		"checksum_absent": raw[:len(raw)-6],
	} {
		_, err := f.m.Verify(ctx, bad, lapse.VerifyOptions{})
		wantCode(t, name, err, lapse.CodeSessionNotFound)
	}
	if _, err := f.m.Verify(ctx, raw, lapse.VerifyOptions{}); err != nil {
		t.Errorf("the token itself after: %v", err)
	}
}

// readCounter counts the session reads by token that reach its store.
type readCounter struct {
	lapse.Store
	reads atomic.Int64
}

func (r *readCounter) SessionByToken(ctx context.Context, h lapse.TokenHash) (*lapse.Session, error) {
	r.reads.Add(1)
	return r.Store.SessionByToken(ctx, h)
}

// TestColdTierSparesTheStore: with far more sessions than the cache's
// map holds, a cache bounded by memory serves them all from its cold
// tier, reading the store for none, and a revoke still holds at the
// next verify.
func TestColdTierSparesTheStore(t *testing.T) {
	st := &readCounter{Store: lapsetest.NewStore()}
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Store: st, CacheMemory: 8 << 20})
	const n = 6000 // about 1,300 fit the map (1 MiB)
	tokens := make([]string, n)
	for i := range tokens {
		tok, _, err := m.Create(ctx, lapse.CreateParams{Subject: fmt.Sprintf("user%d", i), AMR: []string{"pwd"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok.Reveal()
	}
	clock.Advance(time.Second) // within the touch interval: no activity writes
	for range 2 {
		for i, tok := range tokens {
			s, err := m.Verify(ctx, tok, lapse.VerifyOptions{})
			if err != nil || s.Subject != fmt.Sprintf("user%d", i) {
				t.Fatalf("verify of session %d: %+v, %v", i, s, err)
			}
		}
	}
	if r := st.reads.Load(); r != 0 {
		t.Errorf("%d verifies of %d sessions read the store %d times, want 0", 2*n, n, r)
	}
	if c := m.CacheStats(); c.MapSessions > n/2 || c.MapSessions+c.ColdSessions != n {
		t.Errorf("the cache holds %+v, want most of the %d sessions in its cold tier", c, n)
	}
	if err := m.Revoke(ctx, tokens[7]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, tokens[7], lapse.VerifyOptions{}); lapse.ErrorCode(err) != lapse.CodeSessionRevoked {
		t.Errorf("verify after revoke: %v, want %s", err, lapse.CodeSessionRevoked)
	}
}

// TestAncientAuthTimeIsOld: an authentication time before 1970 (which
// nanoseconds since 1970 would wrap into the future) counts as very old,
// so an age limit asks for a step-up rather than passing.
func TestAncientAuthTimeIsOld(t *testing.T) {
	m, _, _ := lapsetest.NewManager(t, lapse.Config{})
	tok, s, err := m.Create(ctx, lapse.CreateParams{Subject: "alice", AuthenticatedAt: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if !s.AuthenticatedAt.Equal(time.Unix(0, 0)) {
		t.Errorf("authenticated at %v, want 1970", s.AuthenticatedAt)
	}
	if _, err := m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{MaxAuthAge: time.Hour}); lapse.ErrorCode(err) != lapse.CodeStepUpRequired {
		t.Errorf("verify with an age limit of an hour: %v, want %s", err, lapse.CodeStepUpRequired)
	}
}
