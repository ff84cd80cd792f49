package lapse_test

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// TestRoutineTouch tells the routine activity write from the others, on
// the wall clock even when the times carry monotonic readings.
func TestRoutineTouch(t *testing.T) {
	now := time.Now() // with a monotonic reading, as a Manager's clock may give
	s := lapse.Session{Status: lapse.StatusActive, LastActiveAt: now,
		IdleExpiresAt: now.Add(10 * time.Minute), ExpiresAt: now.Add(time.Hour), WarnAt: now.Add(9 * time.Minute)}
	ended := s
	ended.Status = lapse.StatusRevoked
	capped := s
	capped.ExpiresAt = now.Add(2 * time.Minute)
	for _, c := range []struct {
		name string
		s    lapse.Session
		at   time.Time
		want bool
	}{
		{"a minute after the last activity", s, now.Add(time.Minute), true},
		{"the same wall time without a monotonic reading", s, now.Round(0).Add(time.Minute), true},
		{"at the last activity", s, now, false},
		{"at the last activity, wall clock only", s, now.Round(0), false},
		{"before the last activity", s, now.Add(-time.Second), false},
		{"at the warning: an extend", s, s.WarnAt, false},
		{"at the idle deadline", s, s.IdleExpiresAt, false},
		{"at the absolute deadline", capped, capped.ExpiresAt, false},
		{"an ended session", ended, now.Add(time.Minute), false},
	} {
		if got := c.s.RoutineTouch(c.at); got != c.want {
			t.Errorf("%s: RoutineTouch = %v, want %v", c.name, got, c.want)
		}
	}
}
