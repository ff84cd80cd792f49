package throttle_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/throttle"
)

var (
	attacker = netip.MustParseAddr("198.51.100.7")
	other    = netip.MustParseAddr("203.0.113.9")
)

func TestBurstThenOneAttemptPerInterval(t *testing.T) {
	clock := lapsetest.NewClock(time.Time{})
	l := throttle.New(throttle.Config{Burst: 3, Every: 10 * time.Second, Clock: clock})
	for i := range 3 {
		if _, ok := l.Allow(attacker); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
		l.Fail(attacker)
	}
	wait, ok := l.Allow(attacker)
	if ok || wait != 10*time.Second {
		t.Fatalf("after 3 failures: allowed %v, wait %v; want refused for 10s", ok, wait)
	}
	if _, ok := l.Allow(other); !ok {
		t.Error("another source was refused")
	}
	clock.Advance(9 * time.Second)
	if wait, ok := l.Allow(attacker); ok || wait != time.Second {
		t.Errorf("9s later: allowed %v, wait %v; want refused for 1s more", ok, wait)
	}
	clock.Advance(time.Second)
	if _, ok := l.Allow(attacker); !ok {
		t.Fatal("refused once the wait was over")
	}
	l.Fail(attacker) // one attempt earned back, spent at once
	if _, ok := l.Allow(attacker); ok {
		t.Error("a second attempt was allowed right after the one earned back")
	}
	clock.Advance(time.Hour)
	for i := range 3 {
		if _, ok := l.Allow(attacker); !ok {
			t.Fatalf("after an hour, attempt %d refused: the burst did not come back", i+1)
		}
		l.Fail(attacker)
	}
	if rejected, throttled := l.Counts(); rejected != 7 || throttled != 3 {
		t.Errorf("counts = %d rejected, %d throttled; want 7 and 3", rejected, throttled)
	}
}

func TestIPv6SourceIsItsSlash64(t *testing.T) {
	l := throttle.New(throttle.Config{Burst: 1, Clock: lapsetest.NewClock(time.Time{})})
	l.Fail(netip.MustParseAddr("2001:db8:1:2::1"))
	if _, ok := l.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")); ok {
		t.Error("another address of the same /64 was allowed")
	}
	if _, ok := l.Allow(netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Error("another /64 was refused")
	}
	l.Fail(netip.MustParseAddr("192.0.2.1"))
	if _, ok := l.Allow(netip.MustParseAddr("::ffff:192.0.2.1")); ok {
		t.Error("an IPv4 address written as IPv6 escaped its count")
	}
}

func TestSourcesAreBounded(t *testing.T) {
	clock := lapsetest.NewClock(time.Time{})
	l := throttle.New(throttle.Config{Burst: 1, MaxSources: 4, Clock: clock})
	for i := range 100 {
		l.Fail(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	tracked := 0
	for i := range 100 {
		if _, ok := l.Allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); !ok {
			tracked++
		}
	}
	if tracked > 4 || tracked == 0 {
		t.Errorf("%d sources tracked, want between 1 and MaxSources (4)", tracked)
	}
}

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "198.51.100.7:4321", nil, "198.51.100.7"},
		{"direct_header_ignored", "198.51.100.7:4321", []string{"203.0.113.1"}, "198.51.100.7"},
		{"behind_a_proxy", "10.1.1.1:80", []string{"203.0.113.1"}, "203.0.113.1"},
		{"client_wrote_its_own_header", "10.1.1.1:80", []string{"1.1.1.1, 203.0.113.1"}, "203.0.113.1"},
		{"two_proxies", "10.1.1.1:80", []string{"203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"headers_joined", "10.1.1.1:80", []string{"203.0.113.1", "10.2.2.2"}, "203.0.113.1"},
		{"garbage_stops_at_the_proxy", "10.1.1.1:80", []string{"203.0.113.1, nonsense"}, "10.1.1.1"},
		{"only_proxies", "10.1.1.1:80", []string{"10.2.2.2"}, "10.2.2.2"},
		{"no_header", "10.1.1.1:80", nil, "10.1.1.1"},
		{"ipv6_peer", "[2001:db8::5]:443", nil, "2001:db8::5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := throttle.ClientAddr(r, proxies); got.String() != c.want {
			t.Errorf("%s: ClientAddr = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]string{time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", time.Minute: "60", 0: "1"} {
		if got := throttle.RetryAfter(wait); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", wait, got, want)
		}
	}
}

// FuzzClientAddr: whatever the peer and X-Forwarded-For hold,
// ClientAddr does not panic, and a peer that is no trusted proxy is the
// client whatever the header says.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.1.1.1:80", "203.0.113.1, 10.2.2.2")
	f.Add("10.1.1.1:80", "nonsense, ::ffff:10.0.0.1")
	f.Add("198.51.100.7:1", "[2001:db8::1]:443")
	f.Add("", ",,,")
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := throttle.ClientAddr(r, proxies)
		if ap, err := netip.ParseAddrPort(remote); err == nil && !proxies[0].Contains(ap.Addr().Unmap()) && got != ap.Addr().Unmap() {
			t.Errorf("ClientAddr(%q, %q) = %s; want the peer, which is no proxy", remote, xff, got)
		}
	})
}
