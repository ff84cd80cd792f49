package main

import (
	"testing"
	"time"
)

// TestWroteActivity checks how -scale tells a verify that wrote its
// session's activity: by a last_active_at within the verify's own time.
func TestWroteActivity(t *testing.T) {
	sent := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	received := sent.Add(5 * time.Millisecond)
	reply := func(at string) []byte {
		return []byte(`{"id":"ses_x","last_active_at":"` + at + `","idle_expires_at":"2026-12-07T03:30:00.000000000Z"}`)
	}
	for _, c := range []struct {
		name  string
		reply []byte
		want  bool
	}{
		{"during the verify", reply("2026-12-07T03:00:00.002000000Z"), true},
		{"within the leeway before it", reply("2026-12-07T02:59:59.999500000Z"), true},
		{"a touch interval earlier", reply("2026-12-07T02:59:59.700000000Z"), false},
		{"after the reply", reply("2026-12-07T03:00:00.007000000Z"), false},
		{"no such field", []byte(`{"id":"ses_x"}`), false},
		{"not a time", reply("yesterday"), false},
	} {
		if got := wroteActivity(c.reply, sent, received); got != c.want {
			t.Errorf("%s: wroteActivity = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestAllWrote checks when -scale takes a measurement's verifies for
// verifies that each wrote: some counted, at least 99 % of them writing.
func TestAllWrote(t *testing.T) {
	for _, c := range []struct {
		n, wrote int
		want     bool
	}{
		{n: 1000, wrote: 1000, want: true},
		{n: 1000, wrote: 990, want: true},
		{n: 1000, wrote: 989, want: false},
		{n: 1000, wrote: 0, want: false},
		{n: 0, wrote: 0, want: false},
	} {
		r := &result{n: c.n, wrote: c.wrote}
		if got := r.allWrote(); got != c.want {
			t.Errorf("%d verifies, %d wrote: allWrote = %v, want %v", c.n, c.wrote, got, c.want)
		}
	}
}

// TestInCycleWindow checks the times verify may take to come round to a
// cycleTier session for each verify to be a routine activity write.
func TestInCycleWindow(t *testing.T) {
	for _, c := range []struct {
		comeRound time.Duration
		want      bool
	}{
		{200 * time.Millisecond, false}, // before the touch interval: no write
		{300 * time.Millisecond, true},
		{time.Second, true},
		{5500 * time.Millisecond, true},
		{5600 * time.Millisecond, false}, // in the warning: an extend
		{7 * time.Second, false},         // expired
	} {
		if got := inCycleWindow(c.comeRound); got != c.want {
			t.Errorf("inCycleWindow(%v) = %v, want %v", c.comeRound, got, c.want)
		}
	}
}
