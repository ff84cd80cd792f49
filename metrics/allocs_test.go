package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/metrics"
)

// TestVerifyCacheHitWithMetricsDoesNotAllocate: a verify served from the
// cache, with the Prometheus observer lapse serve installs, allocates
// nothing (BenchmarkVerifyFloor measures its time).
func TestVerifyCacheHitWithMetricsDoesNotAllocate(t *testing.T) {
	st := lapsetest.NewStore()
	t.Cleanup(func() { st.Close() })
	clock, policy := lapsetest.NewClock(time.Time{}), lapsetest.Policy()
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Store: st, Clock: clock, Policy: policy,
		Observer: metrics.New(st, clock, policy.TierNames())})
	ctx := context.Background()
	tok, _, err := m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	raw := tok.Reveal()
	if _, err := m.Verify(ctx, raw, lapse.VerifyOptions{}); err != nil { // now cached
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := m.Verify(ctx, raw, lapse.VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Verify on a cache hit with metrics allocates %.1f times, want 0", allocs)
	}
}
