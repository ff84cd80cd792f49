package throttle

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lapsehq/lapse"
)

// GuessConfig configures a [Guessing] watch. Zero values are the
// defaults.
type GuessConfig struct {
	// PerSource is how many tokens that name no session one source may
	// send in a minute; the next one refuses the source for BlockFor. 0
	// means 30.
	PerSource int
	// Overall is how many such tokens all sources together may send in a
	// minute before it counts as an episode of guessing from everywhere
	// (recorded, not refused: refusing everyone would slow valid
	// verifies). 0 means 1000.
	Overall int
	// BlockFor is how long a source over PerSource is refused, and how
	// long an overall episode lasts before another is recorded; 0 means
	// 10 minutes.
	BlockFor time.Duration
	// MaxSources bounds the sources tracked; 0 means 100,000.
	MaxSources int
	// Clock tells the time; nil means the system clock.
	Clock lapse.Clock
}

// Guessing is a [lapse.GuessGuard]: it counts tokens that name no
// session per source (an IPv4 address or an IPv6 /64, see [Source]) and
// overall, in windows of a minute, and refuses a source over its limit
// for a while. A valid token from another source is never slowed:
// while no source is refused, Refused is one atomic load. Counts are
// per process, like the [Limiter]'s. It is safe for concurrent use.
type Guessing struct {
	cfg GuessConfig

	mu      sync.Mutex
	counts  map[netip.Prefix]window
	blocked map[netip.Prefix]time.Time // until
	overall window
	calm    time.Time // no overall episode is recorded before this

	nblocked                  atomic.Int64
	misses, refused, episodes atomic.Uint64
}

// window counts events in the minute that began at start.
type window struct {
	start time.Time
	n     int
}

// add counts one event at now, starting a new window if the last one is
// over, and returns the count.
func (w *window) add(now time.Time) int {
	if now.Sub(w.start) >= time.Minute || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	w.n++
	return w.n
}

var _ lapse.GuessGuard = (*Guessing)(nil)

// NewGuessing returns a watch for cfg.
func NewGuessing(cfg GuessConfig) *Guessing {
	if cfg.PerSource <= 0 {
		cfg.PerSource = 30
	}
	if cfg.Overall <= 0 {
		cfg.Overall = 1000
	}
	if cfg.BlockFor <= 0 {
		cfg.BlockFor = 10 * time.Minute
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 100_000
	}
	if cfg.Clock == nil {
		cfg.Clock = lapse.SystemClock{}
	}
	return &Guessing{cfg: cfg, counts: map[netip.Prefix]window{}, blocked: map[netip.Prefix]time.Time{}}
}

// Refused implements [lapse.GuessGuard].
func (g *Guessing) Refused(ip netip.Addr) (time.Duration, bool) {
	if g.nblocked.Load() == 0 {
		return 0, false
	}
	src, now := Source(ip), g.cfg.Clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.blocked[src]
	switch {
	case !ok:
		return 0, false
	case !now.Before(until):
		g.unblock(src)
		return 0, false
	}
	g.refused.Add(1)
	return until.Sub(now), true
}

// Missed implements [lapse.GuessGuard].
func (g *Guessing) Missed(ip netip.Addr) lapse.Reason {
	g.misses.Add(1)
	src, now := Source(ip), g.cfg.Clock.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	w, seen := g.counts[src]
	if !seen && len(g.counts) >= g.cfg.MaxSources {
		g.forget(now)
	}
	n := w.add(now)
	g.counts[src] = w
	overall := g.overall.add(now)
	if _, already := g.blocked[src]; n > g.cfg.PerSource && !already {
		g.blocked[src] = now.Add(g.cfg.BlockFor)
		g.nblocked.Add(1)
		g.episodes.Add(1)
		return lapse.ReasonGuessingSource
	}
	if overall > g.cfg.Overall && !now.Before(g.calm) {
		g.calm = now.Add(g.cfg.BlockFor)
		g.episodes.Add(1)
		return lapse.ReasonGuessingOverall
	}
	return ""
}

// unblock lifts src's refusal; g.mu must be held.
func (g *Guessing) unblock(src netip.Prefix) {
	delete(g.blocked, src)
	delete(g.counts, src)
	g.nblocked.Add(-1)
}

// forget drops the refusals that are over and the counts of sources
// whose window is over, or else sources until there is room; g.mu must
// be held. A source still refused stays refused.
func (g *Guessing) forget(now time.Time) {
	for src, until := range g.blocked {
		if !now.Before(until) {
			g.unblock(src)
		}
	}
	for src, w := range g.counts {
		if now.Sub(w.start) >= time.Minute {
			delete(g.counts, src)
		}
	}
	for src := range g.counts {
		if len(g.counts) < g.cfg.MaxSources {
			break
		}
		if _, refused := g.blocked[src]; !refused {
			delete(g.counts, src)
		}
	}
}

// Counts returns, since the watch was made, how many tokens named no
// session, how many requests of refused sources were answered 429
// unseen, and how many episodes of guessing began.
func (g *Guessing) Counts() (misses, refused, episodes uint64) {
	return g.misses.Load(), g.refused.Load(), g.episodes.Load()
}
