package throttle_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/throttle"
)

func TestGuessingCountsPerMinutePerSource(t *testing.T) {
	clock := lapsetest.NewClock(time.Time{})
	g := throttle.NewGuessing(throttle.GuessConfig{PerSource: 2, Overall: 100, BlockFor: time.Minute, Clock: clock})
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1")
	miss := func(ip netip.Addr, want lapse.Reason) {
		t.Helper()
		if got := g.Missed(ip); got != want {
			t.Fatalf("Missed(%v) = %q, want %q", ip, got, want)
		}
	}
	miss(a, "")
	miss(a, "")
	clock.Advance(time.Minute) // a new window: the count starts again
	miss(a, "")
	miss(a, "")
	miss(b, "")
	miss(a, lapse.ReasonGuessingSource)
	if wait, no := g.Refused(a); !no || wait != time.Minute {
		t.Fatalf("Refused(a) = %v, %v; want refused for 1m", wait, no)
	}
	// the same IPv6 /64 is one source; another /64 is another
	if _, no := g.Refused(netip.MustParseAddr("2001:db8::2")); no {
		t.Fatal("a source with one miss is refused")
	}
	miss(a, "") // still refused: no second episode
	clock.Advance(time.Minute - time.Nanosecond)
	if _, no := g.Refused(a); !no {
		t.Fatal("refusal lifted before block_for")
	}
	clock.Advance(time.Nanosecond)
	if _, no := g.Refused(a); no {
		t.Fatal("refusal still on at block_for")
	}
}

func TestGuessingOverallEpisodeOncePerBlock(t *testing.T) {
	clock := lapsetest.NewClock(time.Time{})
	g := throttle.NewGuessing(throttle.GuessConfig{PerSource: 100, Overall: 3, BlockFor: 2 * time.Minute, Clock: clock})
	var got []lapse.Reason
	for i := range 12 {
		if i == 6 {
			clock.Advance(time.Minute) // a new window, within the episode
		}
		if r := g.Missed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})); r != "" {
			got = append(got, r)
		}
	}
	clock.Advance(2 * time.Minute)
	for i := range 4 {
		if r := g.Missed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})); r != "" {
			got = append(got, r)
		}
	}
	if len(got) != 2 || got[0] != lapse.ReasonGuessingOverall {
		t.Errorf("episodes %v; want one overall episode, and a second once block_for passed", got)
	}
	if _, no := g.Refused(netip.MustParseAddr("198.51.100.1")); no {
		t.Error("an overall episode refused a source")
	}
}
