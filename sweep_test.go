package lapse_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

func TestSweep(t *testing.T) {
	f := newFixture(t)
	idleTok, idle := f.create(t, lapse.CreateParams{Subject: "idle"}) // idle 30m, warn at 28m
	busyTok, busy := f.create(t, lapse.CreateParams{Subject: "busy"}) // kept active
	f.clock.Advance(28*time.Minute - time.Nanosecond)
	if exp, warned, err := f.m.Sweep(ctx); err != nil || exp != 0 || warned != 0 {
		t.Fatalf("sweep just before warn_at: %d expired, %d warned, %v; want nothing", exp, warned, err)
	}
	f.m.Verify(ctx, busyTok.Reveal(), lapse.VerifyOptions{}) // busy stays clear of its warning
	f.clock.Advance(time.Nanosecond)
	if exp, warned, _ := f.m.Sweep(ctx); exp != 0 || warned != 1 {
		t.Fatalf("sweep at warn_at: %d expired, %d warned; want 0 and 1", exp, warned)
	}
	f.clock.Advance(2*time.Minute - time.Nanosecond)
	if exp, _, _ := f.m.Sweep(ctx); exp != 0 {
		t.Fatalf("sweep just before the idle deadline expired %d", exp)
	}
	f.clock.Advance(time.Nanosecond)
	if exp, _, _ := f.m.Sweep(ctx); exp != 1 {
		t.Fatalf("sweep at the idle deadline expired %d, want 1", exp)
	}
	stored, _ := f.store.Session(ctx, idle.ID)
	if stored.Status != lapse.StatusExpired || stored.EndReason != lapse.ReasonIdleTimeout || !stored.EndedAt.Equal(idle.IdleExpiresAt) {
		t.Errorf("swept session: %s/%s at %v", stored.Status, stored.EndReason, stored.EndedAt)
	}
	_, err := f.m.Verify(ctx, idleTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "verify of the swept session", err, lapse.CodeSessionExpiredIdle)
	if s, _ := f.store.Session(ctx, busy.ID); s.Status != lapse.StatusActive {
		t.Errorf("the busy session was swept")
	}
	evs, _ := f.store.QueryEvents(ctx, lapse.EventQuery{SessionID: idle.ID, Types: []lapse.EventType{lapse.EventExpired}})
	if len(evs) != 1 || evs[0].Reason != lapse.ReasonIdleTimeout || !evs[0].Time.Equal(f.clock.Now()) {
		t.Errorf("expired events = %+v, want one idle_timeout at the sweep", evs)
	}
}

func TestStepUpRotatesToken(t *testing.T) {
	f := newFixture(t)
	oldTok, s := f.create(t, lapse.CreateParams{Tier: "sensitive", AAL: 1})
	_, err := f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "AAL1 session on the AAL2 tier", err, lapse.CodeStepUpRequired)
	f.clock.Advance(3 * time.Minute)
	newTok, stepped, err := f.m.StepUp(ctx, oldTok.Reveal(), 2, []string{"pwd", "otp"}, lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	if stepped.ID != s.ID || stepped.AAL != 2 || !stepped.AuthenticatedAt.Equal(f.clock.Now()) || !stepped.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("stepped-up session: id kept %v, aal %d, authenticated %v, absolute %v", stepped.ID == s.ID, stepped.AAL, stepped.AuthenticatedAt, stepped.ExpiresAt)
	}
	if _, err := f.m.Verify(ctx, newTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Errorf("new token: %v", err)
	}
	f.clock.Advance(lapse.RotateGrace - time.Nanosecond)
	if _, err := f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Errorf("old token within the grace: %v, want valid", err)
	}
	f.clock.Advance(time.Nanosecond)
	_, err = f.m.Verify(ctx, oldTok.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "old token after the grace", err, lapse.CodeSessionNotFound)
	_, _, err = f.m.StepUp(ctx, oldTok.Reveal(), 2, nil, lapse.ActorAPI)
	wantCode(t, "step-up with the replaced token", err, lapse.CodeSessionNotFound)
	_, _, err = f.m.StepUp(ctx, newTok.Reveal(), 1, nil, lapse.ActorAPI)
	wantCode(t, "step-down", err, lapse.CodeInvalid)
}

func TestExtendRecordsEvent(t *testing.T) {
	f := newFixture(t)
	tok, s := f.create(t, lapse.CreateParams{})
	f.clock.Advance(10 * time.Second) // well within the touch interval
	got, err := f.m.Extend(ctx, tok.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if !got.IdleExpiresAt.Equal(f.clock.Now().Add(30 * time.Minute)) {
		t.Errorf("extend moved the idle deadline to %v, want now+30m", got.IdleExpiresAt)
	}
	evs, _ := f.store.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID, Types: []lapse.EventType{lapse.EventExtended}})
	if len(evs) != 1 {
		t.Errorf("%d extended events, want 1", len(evs))
	}
}

func TestTokensReplacedByStepUpsDieWithTheSession(t *testing.T) {
	f := newFixture(t)
	a, s := f.create(t, lapse.CreateParams{})
	f.m.Verify(ctx, a.Reveal(), lapse.VerifyOptions{}) // cached
	b, _, err := f.m.StepUp(ctx, a.Reveal(), 2, []string{"otp"}, lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	f.m.Verify(ctx, a.Reveal(), lapse.VerifyOptions{}) // within the grace
	c, _, err := f.m.StepUp(ctx, b.Reveal(), 3, []string{"hwk"}, lapse.ActorAPI)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.End(ctx, s.ID, lapse.ReasonAdmin, lapse.ActorAPI); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]lapse.Token{"first": a, "second": b, "current": c} {
		if _, err := f.m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{NoTouch: true}); err == nil {
			t.Errorf("the %s token still verifies after the session was revoked", name)
		}
	}
}

func TestDeadReplacedTokenCannotLogOut(t *testing.T) {
	f := newFixture(t)
	a, s := f.create(t, lapse.CreateParams{})
	if _, _, err := f.m.StepUp(ctx, a.Reveal(), 2, []string{"otp"}, lapse.ActorAPI); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(lapse.RotateGrace)
	if err := f.m.Revoke(ctx, a.Reveal()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Session(ctx, s.ID); got.Status != lapse.StatusActive {
		t.Errorf("a token replaced %v ago revoked the live session", lapse.RotateGrace)
	}
}

// tidyCounter is the memory store with a Tidy that counts its calls:
// the memory store puts nothing off, so it is no Tidier itself.
type tidyCounter struct {
	*lapsetest.Store
	calls atomic.Int64
}

func (c *tidyCounter) Tidy(context.Context, int) (int, error) {
	c.calls.Add(1)
	return 0, nil
}

// TestRunTidiesAfterQuietSweeps: Run does the store's deferred work
// after a sweep that found little to do, and not before it. Run sweeps
// on a real ticker: the test runs in a synctest bubble, whose fake time
// moves to the tick as soon as everything in it waits.
func TestRunTidiesAfterQuietSweeps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		counted := &tidyCounter{Store: lapsetest.NewStore()}
		m, clock, _ := lapsetest.NewManager(t, lapse.Config{Store: counted})
		_, s := create(t, m, lapse.CreateParams{})
		clock.Advance(time.Hour)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error)
		const every = time.Second
		go func() { done <- m.Run(runCtx, lapse.RunOptions{SweepEvery: every, Retention: -1}) }()
		synctest.Wait()
		if n := counted.calls.Load(); n != 0 {
			t.Fatalf("Run tidied %d times before its first sweep", n)
		}
		time.Sleep(every)
		synctest.Wait() // the first sweep and what follows it are done
		if n := counted.calls.Load(); n != 1 {
			t.Errorf("after a sweep that expired one session, Run tidied %d times, want once", n)
		}
		got, err := counted.Session(ctx, s.ID)
		if err != nil || got.Status != lapse.StatusExpired || got.EndReason != lapse.ReasonIdleTimeout {
			t.Errorf("the session after Run's sweep = %+v, %v; want it recorded expired idle", got, err)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// slowSweeps is the memory store on a fake clock that each ExpireDue
// call moves on, as a real sweep's work takes time.
type slowSweeps struct {
	*lapsetest.Store
	clock *lapsetest.Clock
	calls int
}

func (s *slowSweeps) ExpireDue(ctx context.Context, now time.Time, limit int) ([]*lapse.Session, error) {
	s.calls++
	defer s.clock.Advance(100 * time.Millisecond)
	return s.Store.ExpireDue(ctx, now, limit)
}

// TestSweepTakesDeadlinesPassingDuringIt: in a burst, a sweep goes on with
// the deadlines that passed while it worked instead of leaving them for
// the next tick, and stops at the first call that finds none.
func TestSweepTakesDeadlinesPassingDuringIt(t *testing.T) {
	clock := lapsetest.NewClock(time.Time{})
	slow := &slowSweeps{Store: lapsetest.NewStore(), clock: clock}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Store: slow, Clock: clock})
	// Five sessions whose idle deadlines are 100 ms apart, then a sweep
	// at the first deadline.
	for i := range 5 {
		create(t, m, lapse.CreateParams{Subject: fmt.Sprint("u", i)})
		clock.Advance(100 * time.Millisecond)
	}
	clock.Advance(30*time.Minute - 500*time.Millisecond)
	expired, _, err := m.Sweep(ctx)
	if err != nil || expired != 5 {
		t.Fatalf("sweep = %d expired, %v; want all 5, whose deadlines passed while it ran", expired, err)
	}
	if slow.calls != 6 {
		t.Errorf("ExpireDue called %d times, want 6: one a deadline, and one that finds none", slow.calls)
	}
}
