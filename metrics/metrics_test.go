package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/metrics"
)

// scrape returns m's metrics as Prometheus serves them.
func scrape(m *metrics.Metrics) string {
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	return w.Body.String()
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("metrics lack %s", l)
		}
	}
}

type streams struct {
	open          int
	session, node uint64
}

func (s *streams) StreamCounts() (int, uint64, uint64) { return s.open, s.session, s.node }

// TestStreamCounts: the stream counts are read at each scrape.
func TestStreamCounts(t *testing.T) {
	m := metrics.New(nil, lapsetest.NewClock(time.Time{}), nil)
	st := &streams{open: 7, session: 2, node: 1}
	m.CountStreams(st)
	wantLines(t, scrape(m), "lapse_event_streams_open 7", `lapse_event_streams_refused_total{limit="per_session"} 2`,
		`lapse_event_streams_refused_total{limit="per_node"} 1`)
	st.open, st.node = 3, 4
	wantLines(t, scrape(m), "lapse_event_streams_open 3", `lapse_event_streams_refused_total{limit="per_node"} 4`)
}

// TestWatchCache: what a manager's verify cache holds is read at each
// scrape, by tier, from the manager itself.
func TestWatchCache(t *testing.T) {
	mgr, _, _ := lapsetest.NewManager(t, lapse.Config{CacheMemory: 16 << 20})
	m := metrics.New(nil, lapsetest.NewClock(time.Time{}), nil)
	m.WatchCache(mgr)
	wantLines(t, scrape(m), `lapse_verify_cache_sessions{tier="map"} 0`, `lapse_verify_cache_sessions{tier="cold"} 0`)
	for i := range 5000 {
		if _, _, err := mgr.Create(context.Background(), lapse.CreateParams{Subject: fmt.Sprint("user", i)}); err != nil {
			t.Fatal(err)
		}
	}
	st := mgr.CacheStats()
	if st.MapSessions+st.ColdSessions != 5000 || st.ColdSessions == 0 {
		t.Fatalf("after 5,000 creates the cache holds %+v, want all 5,000, some cold", st)
	}
	wantLines(t, scrape(m), fmt.Sprintf(`lapse_verify_cache_sessions{tier="map"} %d`, st.MapSessions),
		fmt.Sprintf(`lapse_verify_cache_sessions{tier="cold"} %d`, st.ColdSessions))
}
