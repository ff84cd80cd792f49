package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// dwellTier is a tier whose idle timeout is so long (half its absolute
// one, which caps no slide before it) that a benchmark moving the clock
// a minute per write never idles a session out, however many sessions
// it takes turns on.
const dwellTier = "dwell"

// touchSessions is how many sessions BenchmarkTouch writes activity to:
// enough that the rows and index entries a batch changes lie on pages
// far apart, as on a platform with many users signed in.
const touchSessions = 16_384

// BenchmarkTouch measures durable activity writes: Manager.Verify on a
// warm cache with the clock moved past the touch interval before each
// verify, so that every verify writes the session's new last activity
// and idle deadline to the store and returns only after the write is
// durable. 64 goroutines in all, as a server's concurrent requests,
// each on its own share of touchSessions sessions; touches/s is b.N
// over the elapsed time.
//
//   - group: the store as lapse serve opens it, with group commit;
//   - single: the same store with MaxBatch 1, each write its own
//     transaction and commit (the log's syncs, outside the writer, still
//     cover every commit before them): the baseline, measured in the
//     same run.
func BenchmarkTouch(b *testing.B) {
	byCommitMode(b, func(b *testing.B, f *fixture, m *lapse.Manager) func(*testing.B) {
		tokens := createParallel(b, m, dwellTier, touchSessions)
		warm(b, m, tokens)
		return func(b *testing.B) { benchmarkTouch(b, f, m, tokens) }
	})
}

func benchmarkTouch(b *testing.B, f *fixture, m *lapse.Manager, tokens []string) {
	const stride = 64
	ctx := context.Background()
	var worker, writes atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, stride/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		// Worker w takes the tokens w, w+stride, w+2*stride..., so
		// workers share no session.
		i := int(worker.Add(1)-1) % stride
		for pb.Next() {
			f.clock.Advance(time.Minute)
			now := f.clock.Now()
			s, err := m.Verify(ctx, tokens[i%len(tokens)], lapse.VerifyOptions{})
			if err != nil {
				b.Error(err)
				return
			}
			// Another worker may move the clock between Now and the
			// verify's reading: the write is at now or later.
			if s.LastActiveAt.Before(now) {
				b.Errorf("last activity %v, want a write at %v or later", s.LastActiveAt, now)
				return
			}
			writes.Add(1)
			i += stride
		}
	})
	b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "touches/s")
}

// createParallel creates n sessions of tier with 64 goroutines, so that
// group commit makes a large fixture quickly.
func createParallel(b *testing.B, m *lapse.Manager, tier string, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		fail atomic.Value
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				tok, _, err := m.Create(context.Background(), lapse.CreateParams{
					Subject: fmt.Sprintf("user-%d", i), Tier: tier, AMR: []string{"pwd"},
					IP: "192.0.2.1", UserAgent: "bench/1.0",
				})
				if err != nil {
					fail.CompareAndSwap(nil, err)
					return
				}
				tokens[i] = tok.Reveal()
			}
		}()
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatal(err)
	}
	return tokens
}
