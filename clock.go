package lapse

import "time"

// Clock tells the time. All expiry decisions read it, so tests can inject
// a fake one (see the lapsetest package) instead of sleeping.
type Clock interface {
	Now() time.Time
}

// SystemClock is the [Clock] of the running system.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
