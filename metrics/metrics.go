// Package metrics exposes lapse's Prometheus metrics: active sessions by
// tier, verifications by outcome, verify latency, sessions created and
// ended by tier and reason, the session event streams open and refused,
// and the API keys refused. It implements [lapse.Observer].
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is a registry of lapse's metrics. It is safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	verifies *prometheus.CounterVec
	latency  prometheus.Histogram
	created  *prometheus.CounterVec
	ended    *prometheus.CounterVec

	valid    prometheus.Counter // the valid outcome's, resolved once: no lock on a valid verify
	mu       sync.RWMutex
	outcomes map[lapse.Code]prometheus.Counter // resolved once, so a verify does not allocate
}

var _ lapse.Observer = (*Metrics)(nil)

// New returns a registry. When store implements [lapse.ActiveCounter],
// the gauge lapse_sessions_active{tier} is read from it at each scrape,
// as of clock's time; tiers are always reported, 0 when empty.
func New(store lapse.Store, clock lapse.Clock, tiers []string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lapse_verifications_total", Help: "Session verifications by outcome (valid or the error code).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lapse_verify_duration_seconds", Help: "Time to verify a session, in the engine.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lapse_sessions_created_total", Help: "Sessions created, by tier.",
		}, []string{"tier"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lapse_sessions_ended_total", Help: "Sessions ended, by tier, status (expired or revoked) and reason.",
		}, []string{"tier", "status", "reason"}),
		outcomes: map[lapse.Code]prometheus.Counter{},
	}
	m.valid = m.verifies.WithLabelValues("valid")
	m.reg.MustRegister(m.verifies, m.latency, m.created, m.ended,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c, ok := store.(lapse.ActiveCounter); ok {
		m.reg.MustRegister(&activeCollector{counter: c, clock: clock, tiers: tiers})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry, for other packages' collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// StreamCounter is what the event-stream metrics read: the HTTP API's
// server (httpapi.Server).
type StreamCounter interface {
	// StreamCounts returns the streams open now and those refused, past
	// the per-session and the per-node cap, so far.
	StreamCounts() (open int, refusedPerSession, refusedPerNode uint64)
}

// CountStreams reports c's event streams: the gauge
// lapse_event_streams_open and the counter
// lapse_event_streams_refused_total{limit="per_session"|"per_node"}, read
// from c at each scrape.
func (m *Metrics) CountStreams(c StreamCounter) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lapse_event_streams_open", Help: "Session event streams (GET /v1/session/events) open on this node.",
		}, func() float64 { n, _, _ := c.StreamCounts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lapse_event_streams_refused_total", Help: "Session event streams refused with 429, by the cap they hit.",
			ConstLabels: prometheus.Labels{"limit": "per_session"},
		}, func() float64 { _, n, _ := c.StreamCounts(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lapse_event_streams_refused_total", Help: "Session event streams refused with 429, by the cap they hit.",
			ConstLabels: prometheus.Labels{"limit": "per_node"},
		}, func() float64 { _, _, n := c.StreamCounts(); return float64(n) }),
	)
}

// RejectionCounter is what the key-rejection metrics read: the sign-in
// throttle (throttle.Limiter).
type RejectionCounter interface {
	// Counts returns the invalid keys counted and the attempts refused
	// unseen (429), so far.
	Counts() (rejected, throttled uint64)
}

// CountRejections reports c's refusals as
// lapse_key_rejections_total{reason="invalid_key"|"throttled"}: API keys
// refused (at the API or the console's sign-in) because they are not
// valid, and attempts refused with 429 before their key was looked at.
func (m *Metrics) CountRejections(c RejectionCounter) {
	for _, r := range []struct {
		reason string
		value  func() float64
	}{
		{"invalid_key", func() float64 { n, _ := c.Counts(); return float64(n) }},
		{"throttled", func() float64 { _, n := c.Counts(); return float64(n) }},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "lapse_key_rejections_total", Help: "API keys refused: invalid_key (checked and not valid) or throttled (429, not checked).",
			ConstLabels: prometheus.Labels{"reason": r.reason},
		}, r.value))
	}
}

// GuessCounter is what the token-guessing metrics read: the guessing
// watch (throttle.Guessing).
type GuessCounter interface {
	// Counts returns the tokens that named no session, the requests of
	// refused sources answered 429 unseen, and the episodes of guessing
	// that began, so far.
	Counts() (misses, refused, episodes uint64)
}

// CountGuessing reports c's counts as
// lapse_token_guessing_total{kind="invalid_token"|"refused"|"episode"}.
func (m *Metrics) CountGuessing(c GuessCounter) {
	for _, r := range []struct {
		kind  string
		value func() float64
	}{
		{"invalid_token", func() float64 { n, _, _ := c.Counts(); return float64(n) }},
		{"refused", func() float64 { _, n, _ := c.Counts(); return float64(n) }},
		{"episode", func() float64 { _, _, n := c.Counts(); return float64(n) }},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "lapse_token_guessing_total",
			Help:        "Session tokens that named no session (invalid_token), requests of refused sources answered 429 (refused), and episodes of token guessing recorded (episode).",
			ConstLabels: prometheus.Labels{"kind": r.kind},
		}, r.value))
	}
}

// CacheCounter tells what a verify cache holds; *lapse.Manager is one.
type CacheCounter interface {
	CacheStats() lapse.CacheStats
}

// WatchCache exports what c's verify cache holds at each scrape, by
// tier: lapse_verify_cache_sessions{tier="map"|"cold"}.
func (m *Metrics) WatchCache(c CacheCounter) {
	for _, r := range []struct {
		tier  string
		value func() float64
	}{
		{"map", func() float64 { return float64(c.CacheStats().MapSessions) }},
		{"cold", func() float64 { return float64(c.CacheStats().ColdSessions) }},
	} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "lapse_verify_cache_sessions",
			Help:        "Sessions the verify cache holds on this node: as structs in its map, or encoded in its cold tier.",
			ConstLabels: prometheus.Labels{"tier": r.tier},
		}, r.value))
	}
}

// Verified implements [lapse.Observer].
func (m *Metrics) Verified(outcome lapse.Code, took time.Duration) {
	if outcome == "" {
		m.valid.Inc()
		m.latency.Observe(took.Seconds())
		return
	}
	m.mu.RLock()
	c, ok := m.outcomes[outcome]
	m.mu.RUnlock()
	if !ok {
		label := string(outcome)
		if outcome == "" {
			label = "valid"
		}
		c = m.verifies.WithLabelValues(label)
		m.mu.Lock()
		m.outcomes[outcome] = c
		m.mu.Unlock()
	}
	c.Inc()
	m.latency.Observe(took.Seconds())
}

// Created implements [lapse.Observer].
func (m *Metrics) Created(s *lapse.Session) { m.created.WithLabelValues(s.Tier).Inc() }

// Ended implements [lapse.Observer].
func (m *Metrics) Ended(s *lapse.Session) {
	m.ended.WithLabelValues(s.Tier, string(s.Status), string(s.EndReason)).Inc()
}

// activeCollector reads the active sessions by tier from the store at
// each scrape, so the gauge cannot drift from the truth.
type activeCollector struct {
	counter lapse.ActiveCounter
	clock   lapse.Clock
	tiers   []string
}

var activeDesc = prometheus.NewDesc("lapse_sessions_active", "Sessions active now, by tier.", []string{"tier"}, nil)

func (c *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- activeDesc }

func (c *activeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.counter.CountActive(ctx, c.clock.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(activeDesc, err)
		return
	}
	for _, tier := range c.tiers {
		if _, ok := counts[tier]; !ok {
			counts[tier] = 0
		}
	}
	for tier, n := range counts {
		ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(n), tier)
	}
}
