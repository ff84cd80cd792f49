// Package lapsetest holds helpers for testing code that uses lapse: a
// fake clock, a ready-made policy, a store in memory and a manager on
// all three.
package lapsetest

import (
	"sync"
	"time"

	"github.com/lapsehq/lapse"
)

// Clock is a [lapse.Clock] that only moves when told to. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t, or at 2026-01-01T00:00:00Z when
// t is zero.
func NewClock(t time.Time) *Clock {
	if t.IsZero() {
		t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Clock{now: t}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Policy returns a validated policy with the tiers the lapse tests use:
// "standard" (idle 30m, absolute 12h, warn 2m) and "sensitive" (idle 5m,
// absolute 1h, warn 1m, AAL2, auth age 15m, at most 3 sessions), and a
// tenant "acme" whose standard tier idles out after 10m.
func Policy() *lapse.Policy {
	ten := 10 * time.Minute
	p := &lapse.Policy{
		DefaultTier: "standard",
		Tiers: map[string]lapse.Tier{
			"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, WarnBefore: 2 * time.Minute},
			"sensitive": {IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute,
				RequireAAL: 2, MaxAuthAge: 15 * time.Minute, MaxSessions: 3},
		},
		Tenants: map[string]map[string]lapse.TierOverride{
			"acme": {"standard": {IdleTimeout: &ten}},
		},
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}
