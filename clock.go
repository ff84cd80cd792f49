package lapse

import (
	"sync/atomic"
	"time"
)

// Clock tells the time. All expiry decisions read it, so tests can inject
// a fake one (see the lapsetest package) instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the [Clock] of the running system.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Verify on the system clock reads the clock twice, both times the
// monotonic clock only: at its start, for the time it judges the session
// at and the start of its timing, and at its end. time.Now reads the
// wall clock and the monotonic clock, a third read, and a clock read is
// a tenth of a verify served from the cache. The wall time is derived
// from the monotonic reading and an offset measured again at most every
// wallRecheck: a step of the system's clock is seen up to wallRecheck
// late, and a slewed clock (at most 500 ppm) drifts from the derived
// time by under a millisecond before it is measured again.

// monoEpoch is the system's time when the process started, with its
// monotonic reading: the origin of sinceEpoch.
var monoEpoch = time.Now()

// wallRecheck is how old the measure of the wall clock's offset may be.
const wallRecheck = time.Second

// wallOffset is the wall clock's offset in nanoseconds from monoEpoch's
// wall time plus the monotonic time elapsed, as measured at wallChecked
// (a reading of sinceEpoch). A verify that reads one of them changed and
// the other not yet sees an offset at most wallRecheck old, as allowed.
var wallOffset, wallChecked atomic.Int64

// sinceEpoch reads the monotonic clock (only): the time since monoEpoch.
func sinceEpoch() time.Duration { return time.Since(monoEpoch) }

// wallAt returns the system's time in UTC at mono, a reading of
// sinceEpoch just taken, measuring the wall clock's offset again if the
// last measure is wallRecheck old.
func wallAt(mono time.Duration) time.Time {
	if mono-time.Duration(wallChecked.Load()) < wallRecheck {
		return monoEpoch.Add(mono + time.Duration(wallOffset.Load())).UTC()
	}
	now := time.Now()
	m := now.Sub(monoEpoch)                   // monotonic: both have a reading
	w := now.Round(0).Sub(monoEpoch.Round(0)) // wall: Round(0) strips it
	wallOffset.Store(int64(w - m))
	wallChecked.Store(int64(m))
	return now.UTC()
}
