package bench

import (
	"context"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/metrics"
	"github.com/lapsehq/lapse/sqlite"
)

// fixtureSessions is how many sessions each fixture creates. Verifies
// rotate through them so that a cache hit is not always the same CPU
// cache line and a miss reads a table of realistic shape.
const fixtureSessions = 1024

// longTier is a tier like "standard" (so its touch interval is the usual
// one minute) with an absolute timeout long enough that a touch benchmark
// advancing the clock a minute per op never reaches it.
const longTier = "long"

// fixture is a real SQLite store in a temporary directory (WAL, its log
// synced before each write returns, as lapse serve opens it) with
// sessions created by a manager, ready to be verified.
type fixture struct {
	store  *sqlite.Store
	policy *lapse.Policy
	clock  *lapsetest.Clock
	tokens []string // of tier "standard"
	long   []string // of tier longTier
}

// policy returns lapse serve's built-in policy plus longTier and
// dwellTier.
func policy(b *testing.B) *lapse.Policy {
	p := config.DefaultPolicy()
	p.Tiers[longTier] = lapse.Tier{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 100_000 * time.Hour, WarnBefore: 2 * time.Minute}
	p.Tiers[dwellTier] = lapse.Tier{IdleTimeout: 50_000 * time.Hour, AbsoluteTimeout: 100_000 * time.Hour, WarnBefore: 2 * time.Minute}
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	return p
}

// newFixture opens a store in b.TempDir() and creates sessions in it.
// Call it in a parent benchmark: its sub-benchmarks share it, so the
// sessions (each one an fsync) are created once, not for every b.N.
func newFixture(b *testing.B, standard, long int) *fixture {
	b.Helper()
	return newFixtureOptions(b, sqlite.Options{}, standard, long)
}

// newFixtureOptions is newFixture on a store opened with o.
func newFixtureOptions(b *testing.B, o sqlite.Options, standard, long int) *fixture {
	b.Helper()
	return newFixtureAt(b, o, time.Time{}, standard, long)
}

// newFixtureAt is newFixtureOptions with its clock stopped at start
// (2026-01-01 when zero): the system's time now, for a manager on
// lapse.SystemClock.
func newFixtureAt(b *testing.B, o sqlite.Options, start time.Time, standard, long int) *fixture {
	b.Helper()
	store, err := sqlite.OpenOptions(filepath.Join(b.TempDir(), "lapse.db"), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	f := &fixture{store: store, policy: policy(b), clock: lapsetest.NewClock(start)}
	m := f.manager(b, 0, nil)
	f.tokens = createSessions(b, m, "standard", standard)
	f.long = createSessions(b, m, longTier, long)
	return f
}

func createSessions(b *testing.B, m *lapse.Manager, tier string, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tok, _, err := m.Create(context.Background(), lapse.CreateParams{
			Subject: fmt.Sprintf("user-%d", i), Tier: tier, AMR: []string{"pwd"},
			IP: "192.0.2.1", UserAgent: "bench/1.0",
		})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok.Reveal()
	}
	return tokens
}

// manager returns a manager on the fixture's store and clock. A negative
// cacheSize disables the cache; obs nil means no observer.
func (f *fixture) manager(b *testing.B, cacheSize int, obs lapse.Observer) *lapse.Manager {
	b.Helper()
	m, err := lapse.New(lapse.Config{Store: f.store, Policy: f.policy, Clock: f.clock, CacheSize: cacheSize, Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// warm verifies every token once, so that a cache holds them all.
func warm(b *testing.B, m *lapse.Manager, tokens []string) {
	b.Helper()
	for _, tok := range tokens {
		if _, err := m.Verify(context.Background(), tok, lapse.VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// serveMetrics returns the observer lapse serve uses.
func serveMetrics(f *fixture) *metrics.Metrics {
	return metrics.New(f.store, f.clock, f.policy.TierNames())
}

// BenchmarkVerify measures Manager.Verify on one goroutine, as a request
// handler calls it (touch on, the default).
//
//   - cache_hit: the session is in the cache and its last activity was
//     written less than a touch interval ago: no store access. It must
//     not allocate.
//   - cache_hit_metrics: the same with the Prometheus observer lapse
//     serve installs.
//   - cache_cold: a cache bounded by memory (2 MiB) whose map holds about
//     one session in four: nearly every verify finds its session in the
//     cold tier, decodes it and moves it back into the map, evicting
//     another into the cold tier.
//   - cache_miss: the cache is disabled, so every verify reads SQLite.
//   - touch_write: the fake clock moves past the touch interval before
//     each verify, so every verify commits an activity write
//     (an fsync per op).
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, fixtureSessions, fixtureSessions)
	ctx := context.Background()

	verify := func(m *lapse.Manager, tokens []string, advance time.Duration) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if advance > 0 {
					f.clock.Advance(advance)
				}
				if _, err := m.Verify(ctx, tokens[i%len(tokens)], lapse.VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
	}

	hit := f.manager(b, 0, nil)
	warm(b, hit, f.tokens)
	b.Run("cache_hit", verify(hit, f.tokens, 0))

	withMetrics := f.manager(b, 0, serveMetrics(f))
	warm(b, withMetrics, f.tokens)
	b.Run("cache_hit_metrics", verify(withMetrics, f.tokens, 0))

	cold, err := lapse.New(lapse.Config{Store: f.store, Policy: f.policy, Clock: f.clock, CacheMemory: 2 << 20})
	if err != nil {
		b.Fatal(err)
	}
	warm(b, cold, f.tokens)
	b.Run("cache_cold", verify(cold, f.tokens, 0))

	b.Run("cache_miss", verify(f.manager(b, -1, nil), f.tokens, 0))

	// One session is enough: the clock moves a touch interval per op, so
	// each verify finds its last write a minute old.
	touch := f.manager(b, 0, nil)
	b.Run("touch_write", verify(touch, f.long[:1], time.Minute))
}

// BenchmarkVerifyParallel is BenchmarkVerify with b.RunParallel: one
// goroutine per GOMAXPROCS, each verifying its own share of the
// sessions. In touch_write the shared fake clock moves a minute per op
// and every goroutine writes; the store has one writer connection, so
// the writes queue for it.
func BenchmarkVerifyParallel(b *testing.B) {
	f := newFixture(b, fixtureSessions, fixtureSessions)
	ctx := context.Background()

	// stride is far above any GOMAXPROCS here.
	const stride = 64
	verify := func(m *lapse.Manager, tokens []string, advance time.Duration) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			var worker atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				// Worker w takes the tokens w, w+stride, w+2*stride...,
				// so workers share no session.
				w := int(worker.Add(1)-1) % stride
				i := w
				for pb.Next() {
					if advance > 0 {
						f.clock.Advance(advance)
					}
					if _, err := m.Verify(ctx, tokens[i%len(tokens)], lapse.VerifyOptions{}); err != nil {
						b.Error(err)
						return
					}
					i += stride
				}
			})
		}
	}

	hit := f.manager(b, 0, nil)
	warm(b, hit, f.tokens)
	b.Run("cache_hit", verify(hit, f.tokens, 0))

	withMetrics := f.manager(b, 0, serveMetrics(f))
	warm(b, withMetrics, f.tokens)
	b.Run("cache_hit_metrics", verify(withMetrics, f.tokens, 0))

	b.Run("cache_miss", verify(f.manager(b, -1, nil), f.tokens, 0))

	// With stride sessions, each worker verifies one session only, so
	// the gap between two verifies of it is a minute per running worker:
	// past the touch interval, far within the idle timeout.
	touch := f.manager(b, 0, nil)
	b.Run("touch_write", verify(touch, f.long[:stride], time.Minute))
}

// BenchmarkCreate measures Manager.Create with durability: every
// session is committed (WAL, its log synced) with its event before
// Create returns. The sessions/s metric is b.N over the elapsed time.
//
//   - group: the store as lapse serve opens it, with group commit
//     (concurrent creates share one transaction and one fsync);
//   - single: the same store with MaxBatch 1, every create its own
//     transaction and commit (the log's syncs, outside the writer, still
//     cover every commit before them): the baseline, measured in the
//     same run.
//
// Each runs serial (one goroutine), parallel64 (b.RunParallel with 64
// goroutines in all, like a server's concurrent sign-ins) and
// parallel64_spread (the same with subjects in no order).
func BenchmarkCreate(b *testing.B) {
	byCommitMode(b, func(b *testing.B, _ *fixture, m *lapse.Manager) func(*testing.B) {
		return func(b *testing.B) { benchmarkCreate(b, m) }
	})
}

// byCommitMode runs the sub-benchmarks group (a store as lapse serve
// opens it) and single (the same with MaxBatch 1), each on a new empty
// fixture with a manager with serve's observer. setup prepares each once,
// outside the timed runs, and returns the benchmark.
func byCommitMode(b *testing.B, setup func(b *testing.B, f *fixture, m *lapse.Manager) func(*testing.B)) {
	for _, mode := range []struct {
		name string
		o    sqlite.Options
	}{{"group", sqlite.Options{}}, {"single", sqlite.Options{MaxBatch: 1}}} {
		f := newFixtureOptions(b, mode.o, 0, 0)
		b.Run(mode.name, setup(b, f, f.manager(b, 0, serveMetrics(f))))
	}
}

func benchmarkCreate(b *testing.B, m *lapse.Manager) {
	ctx := context.Background()
	var n atomic.Int64
	create := func(b *testing.B) {
		p := lapse.CreateParams{
			Subject: fmt.Sprintf("user-%d", n.Add(1)), AMR: []string{"pwd"},
			IP: "192.0.2.1", UserAgent: "bench/1.0",
		}
		if _, _, err := m.Create(ctx, p); err != nil {
			b.Error(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			create(b)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
	})
	parallel := func(create func(*testing.B)) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					create(b)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
		}
	}
	b.Run("parallel64", parallel(create))
	// Subjects in no order, as at a real sign-in peak: user-1, user-2...
	// above sort into one place of the subject indexes (sessions_by_subject,
	// event_subjects), so a batch appends to them; spread, each create
	// writes a page of each at random.
	b.Run("parallel64_spread", parallel(func(b *testing.B) {
		h := fnv.New64a()
		fmt.Fprint(h, n.Add(1))
		p := lapse.CreateParams{
			Subject: fmt.Sprintf("user-%016x", h.Sum64()), AMR: []string{"pwd"},
			IP: "192.0.2.1", UserAgent: "bench/1.0",
		}
		if _, _, err := m.Create(ctx, p); err != nil {
			b.Error(err)
		}
	}))
}
