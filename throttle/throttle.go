// Package throttle slows the guessing of credentials: it counts the
// failed attempts (a wrong API key, a wrong key at the console's
// sign-in) of each source address and refuses a source that failed too
// often, for a while, before its credential is even looked at.
//
// The count is per source, never per credential: when keys carry a
// public id, anyone can send a wrong secret with a known key's id, and a
// throttle keyed by credential would let them lock that key out. A
// source is an IPv4 address or an IPv6 /64 (what one subscriber
// usually has). A valid credential from another source is never
// slowed; one from a throttled source waits like the rest of it, since
// answering it would tell a guess that hit from one that missed.
//
// Every failure is charged, so a source's long-run rate stays at one
// attempt per Every whatever it does; attempts sent at once may all be
// checked before the first failure is charged (no lock is held while a
// credential is checked, which may take a store lookup), and then the
// source waits for each of them. Counts are kept in memory, per process:
// behind a load balancer each node throttles on its own, so a source
// gets at most the nodes' number times the budget.
package throttle

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lapsehq/lapse"
)

// Config configures a [Limiter]. Zero values are the defaults.
type Config struct {
	// Burst is how many failures a source may make in a row; 0 means 10.
	Burst int
	// Every is how often a source earns one more attempt back; 0 means
	// 6s (ten a minute, once the burst is spent).
	Every time.Duration
	// MaxSources bounds the sources tracked; 0 means 100,000. Past it
	// the limiter forgets a source that has recovered, or else any one.
	MaxSources int
	// Clock tells the time; nil means the system clock.
	Clock lapse.Clock
}

// Limiter counts failures per source, as a generic cell rate algorithm:
// each failure pushes the source's "due" time Every further, and a source
// whose due time is more than (Burst-1)·Every ahead is refused until it
// is not. It is safe for concurrent use.
type Limiter struct {
	cfg       Config
	mu        sync.Mutex
	due       map[netip.Prefix]time.Time
	rejected  atomic.Uint64
	throttled atomic.Uint64
}

// New returns a limiter for cfg.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.Every <= 0 {
		cfg.Every = 6 * time.Second
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 100_000
	}
	if cfg.Clock == nil {
		cfg.Clock = lapse.SystemClock{}
	}
	return &Limiter{cfg: cfg, due: map[netip.Prefix]time.Time{}}
}

// Source returns the source addr counts under: an IPv4 address, or the
// /64 of an IPv6 address. The zero Addr (an unknown peer) is a source
// of its own.
func Source(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	switch {
	case addr.Is4():
		return netip.PrefixFrom(addr, 32)
	case addr.Is6():
		p, _ := addr.Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// Allow reports whether addr's source may try a credential now; if not,
// it counts a throttled attempt and returns how long the source must
// wait.
func (l *Limiter) Allow(addr netip.Addr) (wait time.Duration, ok bool) {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	due, seen := l.due[Source(addr)]
	l.mu.Unlock()
	if !seen {
		return 0, true
	}
	if over := due.Sub(now) - time.Duration(l.cfg.Burst-1)*l.cfg.Every; over > 0 {
		l.throttled.Add(1)
		return over, false
	}
	return 0, true
}

// Fail records a failed attempt from addr's source.
func (l *Limiter) Fail(addr netip.Addr) {
	l.rejected.Add(1)
	now := l.cfg.Clock.Now()
	src := Source(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	due, seen := l.due[src]
	if !seen && len(l.due) >= l.cfg.MaxSources {
		l.forgetOne(now)
	}
	if due.Before(now) {
		due = now
	}
	l.due[src] = due.Add(l.cfg.Every)
}

// forgetOne drops one source, in constant time: the first recovered one
// among a few in the map's random order, or else the last of those.
// l.mu must be held.
func (l *Limiter) forgetOne(now time.Time) {
	var last netip.Prefix
	n := 0
	for src, due := range l.due {
		if last = src; !due.After(now) {
			break
		}
		if n++; n == 8 {
			break
		}
	}
	delete(l.due, last)
}

// Counts returns how many failed attempts were counted and how many
// attempts were refused unseen, since the limiter was made.
func (l *Limiter) Counts() (rejected, throttled uint64) {
	return l.rejected.Load(), l.throttled.Load()
}

// RetryAfter renders a wait as the value of a Retry-After header: whole
// seconds, rounded up, at least 1.
func RetryAfter(wait time.Duration) string {
	secs := (wait + time.Second - 1) / time.Second
	return strconv.Itoa(max(1, int(secs)))
}

// ClientAddr returns the address of the client that sent r: its peer's,
// or, when the peer is one of the trusted reverse proxies, the right-most
// address of X-Forwarded-For that is not itself a trusted proxy (the
// left of it is whatever the client wrote). It returns the zero Addr
// when the peer address cannot be read.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peer(r.RemoteAddr)
	if !contains(trusted, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := peer(strings.TrimSpace(hops[i]))
		if !hop.IsValid() {
			return addr // garbage: the last proxy that vouched is the client
		}
		if addr = hop; !contains(trusted, addr) {
			return addr
		}
	}
	return addr
}

// peer reads an address with or without a port.
func peer(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

func contains(nets []netip.Prefix, a netip.Addr) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
