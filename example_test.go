package lapse_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

// A session from sign-in to its idle timeout: create it after the
// platform authenticated the subject, verify it on each request, and
// see it refused once its idle deadline has passed.
func Example() {
	ctx := context.Background()
	// A real program opens a store (sqlite.Open, redis.Open,
	// postgres.Open) and reads the policy with config.Load; this one
	// keeps sessions in memory and moves a fake clock.
	clock := lapsetest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	m, err := lapse.New(lapse.Config{Store: lapsetest.NewStore(), Policy: lapsetest.Policy(), Clock: clock})
	if err != nil {
		panic(err)
	}

	tok, s, err := m.Create(ctx, lapse.CreateParams{Subject: "alice", AAL: 1, AMR: []string{"pwd"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", s.Tier, "tier, idle deadline", s.IdleExpiresAt.Format(time.Kitchen))
	// Hand tok.Reveal() to the browser in a cookie; lapse keeps only its
	// hash, and tok itself prints redacted (lps_[REDACTED] and a few
	// characters to tell tokens apart in a log).
	fmt.Println("the token prints redacted:", strings.HasPrefix(tok.String(), "lps_[REDACTED]"))

	clock.Advance(20 * time.Minute)
	v, err := m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	fmt.Println("verify after 20m:", lapse.ErrorCode(err) == "", "idle deadline now", v.IdleExpiresAt.Format(time.Kitchen))

	_, err = m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{RequireAAL: 2})
	fmt.Println("a route that needs AAL2:", lapse.ErrorCode(err))

	clock.Advance(31 * time.Minute)
	_, err = m.Verify(ctx, tok.Reveal(), lapse.VerifyOptions{})
	fmt.Println("verify after 31m idle:", lapse.ErrorCode(err))
	// Output:
	// created: standard tier, idle deadline 9:30AM
	// the token prints redacted: true
	// verify after 20m: true idle deadline now 9:50AM
	// a route that needs AAL2: step_up_required
	// verify after 31m idle: session_expired_idle
}
