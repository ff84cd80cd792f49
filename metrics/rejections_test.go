package metrics_test

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/metrics"
)

type rejections struct{ rejected, throttled uint64 }

func (r *rejections) Counts() (uint64, uint64) { return r.rejected, r.throttled }

// TestRejectionCounts: the throttle's counts are read at each scrape.
func TestRejectionCounts(t *testing.T) {
	m := metrics.New(nil, lapsetest.NewClock(time.Time{}), nil)
	rj := &rejections{rejected: 10, throttled: 3}
	m.CountRejections(rj)
	wantLines(t, scrape(m), `lapse_key_rejections_total{reason="invalid_key"} 10`, `lapse_key_rejections_total{reason="throttled"} 3`)
	rj.throttled = 5
	wantLines(t, scrape(m), `lapse_key_rejections_total{reason="throttled"} 5`)
}
