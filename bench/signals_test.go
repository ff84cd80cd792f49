package bench

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/throttle"
)

// BenchmarkVerifyDrift measures what the client-drift checks
// (docs/signals.md) add to a verify from the cache, in one run:
//
//   - no_client: no client in the context, so nothing is compared or
//     counted: the baseline.
//   - same_client: the session's own address and User-Agent, with the
//     guessing watch installed, as lapse serve runs: the common case.
//   - other_network: an address outside the session's /24, same
//     User-Agent: a phone that changed network, recorded once and then
//     found in the set of signals already recorded on every verify.
//   - other_browser: another User-Agent, so both are parsed on every
//     verify: the worst case of the allow action.
//   - interleaved: blocks of 32 verifies with no client and with the
//     session's own client, alternating (and which goes first), so that the load of a shared
//     machine falls on both alike; it reports the median of the pairs'
//     ratios as same/none (goal: at most 1.1).
//
// The signals of other_network and other_browser are recorded before
// the clock starts, once per session, as they would be in a real run;
// what is measured is every later verify.
func BenchmarkVerifyDrift(b *testing.B) {
	f := newFixture(b, fixtureSessions, 0)
	guess := throttle.NewGuessing(throttle.GuessConfig{Clock: f.clock})
	m, err := lapse.New(lapse.Config{Store: f.store, Policy: f.policy, Clock: f.clock, Guessing: guess})
	if err != nil {
		b.Fatal(err)
	}
	warm(b, m, f.tokens)
	run := func(ctx context.Context) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.Verify(ctx, f.tokens[i%len(f.tokens)], lapse.VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
	}
	client := func(ip, ua string) context.Context {
		return lapse.WithClient(context.Background(), lapse.Client{IP: netip.MustParseAddr(ip), UserAgent: ua})
	}
	same := client("192.0.2.1", "bench/1.0")
	network := client("198.51.100.7", "bench/1.0")
	browser := client("192.0.2.1", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0")
	for _, ctx := range []context.Context{network, browser} {
		for _, tok := range f.tokens {
			if _, err := m.Verify(ctx, tok, lapse.VerifyOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("no_client", run(context.Background()))
	b.Run("same_client", run(same))
	b.Run("other_network", run(network))
	b.Run("other_browser", run(browser))
	b.Run("interleaved", func(b *testing.B) {
		const block = 32
		ctxs := [2]context.Context{context.Background(), same}
		verify := func(k, from int) time.Duration {
			start := time.Now()
			for j := range block {
				if _, err := m.Verify(ctxs[k], f.tokens[(from+j)%len(f.tokens)], lapse.VerifyOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			return time.Since(start)
		}
		var (
			ratios []float64
			total  time.Duration
			i      int
		)
		for b.Loop() {
			// On one block of tokens none goes first, on the next the
			// client: each runs once on colder caches and once on warmer.
			none := verify(0, i)
			withClient := verify(1, i) + verify(1, i+block)
			none += verify(0, i+block)
			i += 2 * block
			total += none + withClient
			ratios = append(ratios, float64(withClient)/float64(none))
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], "same/none")
		b.ReportMetric(float64(total)/float64(4*block*b.N), "ns/verify")
	})
}
