package console

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	dto "github.com/prometheus/client_model/go"
)

// window is a span of time the charts can show, cut into buckets, with
// a label on the time axis every Label.
type window struct {
	Name   string
	Span   time.Duration
	Bucket time.Duration
	Label  time.Duration
}

var windows = []window{
	{"1h", time.Hour, time.Minute, 10 * time.Minute},
	{"6h", 6 * time.Hour, 5 * time.Minute, time.Hour},
	{"24h", 24 * time.Hour, 15 * time.Minute, 3 * time.Hour},
	{"7d", 7 * 24 * time.Hour, 2 * time.Hour, 24 * time.Hour},
}

// maxScan bounds the events one chart page reads.
const maxScan = 2_000_000

// endReasons orders the reasons of ended sessions in the charts.
var endReasons = []lapse.Reason{
	lapse.ReasonIdleTimeout, lapse.ReasonAbsoluteTimeout, lapse.ReasonLogout, lapse.ReasonLogoutAll,
	lapse.ReasonAdmin, lapse.ReasonPasswordChange, lapse.ReasonLimit, lapse.ReasonTheft, lapse.ReasonIdPLogout,
}

// activity is what the audit log says about a window: sessions created
// and ended per bucket, by tier, and ended by reason. Buckets start on
// multiples of their length (UTC), so the last one holds only the time
// up to now.
type activity struct {
	start   time.Time
	now     time.Time
	n       int
	bucket  time.Duration
	label   time.Duration
	created map[string][]int
	ended   map[string][]int
	reasons map[lapse.Reason][]int
	// signals counts the signs of suspicious activity by event type.
	signals map[lapse.EventType][]int
	scanned int
	partial bool // maxScan was reached
}

// readActivity reads the creations and endings of [now-w.Span, now) from
// log into buckets, without keeping the events.
func readActivity(ctx context.Context, log lapse.AuditLog, w window, now time.Time) (*activity, error) {
	a := &activity{n: int(w.Span / w.Bucket), bucket: w.Bucket, label: w.Label, now: now,
		created: map[string][]int{}, ended: map[string][]int{}, reasons: map[lapse.Reason][]int{}, signals: map[lapse.EventType][]int{}}
	a.start = now.Truncate(w.Bucket).Add(-time.Duration(a.n-1) * w.Bucket)
	inc := func(m map[string][]int, k string, i int) {
		if m[k] == nil {
			m[k] = make([]int, a.n)
		}
		m[k][i]++
	}
	types := append([]lapse.EventType{lapse.EventCreated, lapse.EventExpired, lapse.EventRevoked}, signalTypes...)
	q := lapse.EventQuery{Since: a.start, Types: types, Limit: 5000, Tenant: lapse.TenantOf(ctx)}
	for {
		evs, err := log.QueryEvents(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			i := min(max(int(e.Time.Sub(a.start)/w.Bucket), 0), a.n-1)
			a.add(e, i, inc)
		}
		a.scanned += len(evs)
		if len(evs) < q.Limit {
			return a, nil
		}
		if a.scanned >= maxScan {
			a.partial = true
			return a, nil
		}
		q.After = evs[len(evs)-1].Seq
	}
}

// add counts e in bucket i.
func (a *activity) add(e lapse.Event, i int, inc func(map[string][]int, string, int)) {
	switch e.Type {
	case lapse.EventCreated:
		inc(a.created, e.Tier, i)
	case lapse.EventExpired, lapse.EventRevoked:
		inc(a.ended, e.Tier, i)
		if a.reasons[e.Reason] == nil {
			a.reasons[e.Reason] = make([]int, a.n)
		}
		a.reasons[e.Reason][i]++
	default:
		if a.signals[e.Type] == nil {
			a.signals[e.Type] = make([]int, a.n)
		}
		a.signals[e.Type][i]++
	}
}

// activeByTier walks back from the sessions active now: at the end of
// each bucket, those active were the ones active at its end, minus the
// ones created in it, plus the ones that ended in it. It returns n+1
// points per tier: the start of each bucket, then now.
func (a *activity) activeByTier(now map[string]int) map[string][]float64 {
	tiers := map[string]bool{}
	for _, m := range []map[string][]int{a.created, a.ended} {
		for t := range m {
			tiers[t] = true
		}
	}
	for t := range now {
		tiers[t] = true
	}
	out := map[string][]float64{}
	for t := range tiers {
		pts := make([]float64, a.n+1)
		cur := now[t]
		pts[a.n] = float64(cur)
		for i := a.n - 1; i >= 0; i-- {
			if a.created[t] != nil {
				cur -= a.created[t][i]
			}
			if a.ended[t] != nil {
				cur += a.ended[t][i]
			}
			pts[i] = float64(max(cur, 0)) // a purge or an unswept lapse can leave the log short
		}
		out[t] = pts
	}
	return out
}

// labels names the n+1 points (the start of each bucket, then now) or
// the n buckets (bars) of a for the time axis, on round times, and in
// full for tooltips and tables.
func (a *activity) labels(points bool) (labels, tips []string) {
	count := a.n
	if points {
		count++
	}
	short, long := "15:04", "2006-01-02 15:04"
	if a.label >= 24*time.Hour {
		short = "Mon 2 Jan"
	}
	for i := range count {
		t := a.start.Add(time.Duration(i) * a.bucket)
		label := ""
		if t.Truncate(a.label).Equal(t) && i < a.n {
			label = t.Format(short)
		}
		labels = append(labels, label)
		switch {
		case points && i == a.n:
			tips = append(tips, "now ("+a.now.Format(long)+" UTC)")
		case points:
			tips = append(tips, t.Format(long)+" UTC")
		case i == a.n-1:
			tips = append(tips, t.Format(long)+"–"+a.now.Format("15:04")+" UTC (so far)")
		default:
			tips = append(tips, t.Format(long)+"–"+t.Add(a.bucket).Format("15:04")+" UTC")
		}
	}
	return labels, tips
}

type chartsView struct {
	base
	Windows []window
	Window  window
	NoLog   bool
	Partial bool
	Scanned int
	// Active is nil when the store cannot count active sessions.
	Active  *plot
	Ended   *plot
	Signals *plot
	Latency *plot
	// LatencyNote says why there is no latency chart.
	LatencyNote string
}

func (c *Console) chartsPage(w http.ResponseWriter, r *http.Request, a *access) error {
	v := &chartsView{base: c.base(r, a, "Charts", "charts"), Windows: windows, Window: windows[2]}
	if name := r.URL.Query().Get("window"); name != "" {
		i := slices.IndexFunc(windows, func(w window) bool { return w.Name == name })
		if i < 0 {
			return &pageError{http.StatusBadRequest, "Invalid window", "Choose one of 1h, 6h, 24h or 7d."}
		}
		v.Window = windows[i]
	}
	ctx, cancel := timeout(r)
	defer cancel()
	now := v.Now
	if log, ok := c.m.Store().(lapse.AuditLog); ok {
		act, err := readActivity(ctx, log, v.Window, now)
		if err != nil {
			return err
		}
		v.Partial, v.Scanned = act.partial, act.scanned
		// Active counts are the platform's, of every tenant.
		if counter, ok := c.m.Store().(lapse.ActiveCounter); ok && !act.partial && a.who.Tenant == "" {
			counts, err := counter.CountActive(ctx, now)
			if err != nil {
				return err
			}
			v.Active = c.activePlot(act, counts)
		}
		v.Ended = endedPlot(act, v.Window)
		v.Signals = signalsPlot(act, v.Window)
	} else {
		v.NoLog = true
	}
	if a.who.Tenant == "" {
		v.Latency, v.LatencyNote = c.latencyPlot()
	} else {
		v.LatencyNote = "Verify latency is measured for the whole platform, not per tenant."
	}
	c.render(w, http.StatusOK, "charts", v)
	return nil
}

func (c *Console) activePlot(act *activity, counts map[string]int) *plot {
	byTier := act.activeByTier(counts)
	var tiers []string
	for _, t := range c.tierNames() {
		if _, ok := byTier[t]; ok {
			tiers = append(tiers, t)
		}
	}
	var others []string // tiers of sessions older than the policy
	for t := range byTier {
		if !slices.Contains(tiers, t) {
			others = append(others, t)
		}
	}
	slices.Sort(others)
	tiers = append(tiers, others...)
	// The busiest tiers first, so that they get the plainest lines.
	sum := func(t string) (n float64) {
		for _, v := range byTier[t] {
			n += v
		}
		return n
	}
	slices.SortStableFunc(tiers, func(a, b string) int { return cmp.Compare(sum(b), sum(a)) })
	p := &plot{ID: "active", Title: "Active sessions by tier", YLabel: "sessions"}
	p.Labels, p.Tips = act.labels(true)
	total := make([]float64, act.n+1)
	for _, t := range tiers {
		p.Series = append(p.Series, series{Name: t, Values: byTier[t]})
		for i, v := range byTier[t] {
			total[i] += v
		}
	}
	hi, lo := 0, 0
	for i, v := range total {
		if v > total[hi] {
			hi = i
		}
		if v < total[lo] {
			lo = i
		}
	}
	var now []string
	for _, t := range tiers {
		now = append(now, fmt.Sprintf("%s %s", t, formatNumber(byTier[t][act.n])))
	}
	if len(tiers) == 0 {
		p.Summary = "No sessions were active in this window."
		p.Series = []series{{Name: "all tiers", Values: total}}
		return p
	}
	p.Summary = fmt.Sprintf("Now %s active (%s). Highest in the window: %s at %s; lowest: %s at %s.",
		formatNumber(total[act.n]), strings.Join(now, ", "),
		formatNumber(total[hi]), p.Tips[hi], formatNumber(total[lo]), p.Tips[lo])
	return p
}

func endedPlot(act *activity, w window) *plot {
	p := &plot{ID: "ended", Title: "Expirations and revocations by reason", YLabel: "sessions per " + shortDuration(w.Bucket), Bars: true}
	p.Labels, p.Tips = act.labels(false)
	var reasons []lapse.Reason
	for _, r := range endReasons {
		if act.reasons[r] != nil {
			reasons = append(reasons, r)
		}
	}
	for r := range act.reasons {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	total := make([]int, act.n)
	var parts []string
	sum := 0
	for _, r := range reasons {
		vals := make([]float64, act.n)
		n := 0
		for i, k := range act.reasons[r] {
			vals[i] = float64(k)
			total[i] += k
			n += k
		}
		sum += n
		p.Series = append(p.Series, series{Name: reasonLabel(r), Values: vals})
		parts = append(parts, fmt.Sprintf("%s %s", formatNumber(float64(n)), reasonLabel(r)))
	}
	if sum == 0 {
		p.Summary = fmt.Sprintf("No session expired or was revoked in the last %s.", w.Name)
		p.Series = []series{{Name: "ended", Values: make([]float64, act.n)}}
		return p
	}
	busiest := 0
	for i, k := range total {
		if k > total[busiest] {
			busiest = i
		}
	}
	sessions := "sessions"
	if sum == 1 {
		sessions = "session"
	}
	p.Summary = fmt.Sprintf("%s %s ended in the last %s: %s. Busiest %s: %s, with %s.",
		formatNumber(float64(sum)), sessions, w.Name, strings.Join(parts, ", "), shortDuration(w.Bucket),
		p.Tips[busiest], formatNumber(float64(total[busiest])))
	return p
}

// signalTypes are the event types of the signs of suspicious activity
// (docs/signals.md, docs/device-binding.md), in the order of their chart;
// a session's page lists those about it.
var signalTypes = []lapse.EventType{
	lapse.EventClientChanged, lapse.EventNewDevice, lapse.EventTokenReused,
	lapse.EventTokenGuessing, lapse.EventTheftSuspected,
}

// signalLabels name the signs for people.
var signalLabels = map[lapse.EventType]string{
	lapse.EventClientChanged:  "client changed",
	lapse.EventNewDevice:      "new device",
	lapse.EventTokenReused:    "replaced token used again",
	lapse.EventTokenGuessing:  "token guessing",
	lapse.EventTheftSuspected: "theft suspected (device binding)",
}

// signalsPlot charts the signs of suspicious activity per bucket, by
// kind; sessions ended for theft are in the ended chart.
func signalsPlot(act *activity, w window) *plot {
	p := &plot{ID: "signals", Title: "Signs of suspicious activity", YLabel: "events per " + shortDuration(w.Bucket), Bars: true}
	p.Labels, p.Tips = act.labels(false)
	var parts []string
	sum := 0
	for _, t := range signalTypes {
		counts := act.signals[t]
		if counts == nil {
			continue
		}
		vals := make([]float64, act.n)
		n := 0
		for i, k := range counts {
			vals[i] = float64(k)
			n += k
		}
		sum += n
		p.Series = append(p.Series, series{Name: signalLabels[t], Values: vals})
		parts = append(parts, fmt.Sprintf("%s %s", formatNumber(float64(n)), signalLabels[t]))
	}
	if sum == 0 {
		p.Summary = fmt.Sprintf("No sign of suspicious activity was recorded in the last %s.", w.Name)
		p.Series = []series{{Name: "signs", Values: make([]float64, act.n)}}
		return p
	}
	p.Summary = fmt.Sprintf("In the last %s: %s. Each is an event in the audit log, with its session.", w.Name, strings.Join(parts, ", "))
	return p
}

// reasonLabel names a reason for people, saying whether it is an expiry
// or a revocation.
func reasonLabel(r lapse.Reason) string {
	switch r {
	case lapse.ReasonIdleTimeout:
		return "expired: idle"
	case lapse.ReasonAbsoluteTimeout:
		return "expired: absolute"
	}
	return "revoked: " + strings.ReplaceAll(string(r), "_", " ")
}

func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0 && d > time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d == time.Hour:
		return "hour"
	case d == time.Minute:
		return "minute"
	}
	return fmt.Sprintf("%d minutes", d/time.Minute)
}

// latencyMetric is the histogram of verify durations.
const latencyMetric = "lapse_verify_duration_seconds"

// latencyPlot draws the distribution of verify durations in the
// histogram's buckets since the process started, with quantiles
// estimated from them.
func (c *Console) latencyPlot() (*plot, string) {
	if c.metrics == nil {
		return nil, "No metrics registry was given to the console."
	}
	mfs, err := c.metrics.Gather()
	if err != nil && len(mfs) == 0 {
		c.log.Error("console: gathering metrics", "err", err)
		return nil, "The metrics could not be read."
	}
	var h *dto.Histogram
	for _, mf := range mfs {
		if mf.GetName() == latencyMetric && mf.GetType() == dto.MetricType_HISTOGRAM && len(mf.GetMetric()) > 0 {
			h = mf.GetMetric()[0].GetHistogram()
		}
	}
	if h == nil {
		return nil, "The registry has no " + latencyMetric + " histogram."
	}
	p := &plot{ID: "latency", Title: "Verify latency", YLabel: "verifications", Bars: true}
	var counts []float64
	var uppers []float64
	prev := uint64(0)
	for _, b := range h.GetBucket() {
		if math.IsInf(b.GetUpperBound(), 1) {
			continue
		}
		counts = append(counts, float64(b.GetCumulativeCount()-prev))
		uppers = append(uppers, b.GetUpperBound())
		p.Labels = append(p.Labels, "≤"+seconds(b.GetUpperBound()))
		prev = b.GetCumulativeCount()
	}
	total := h.GetSampleCount()
	counts = append(counts, float64(total-prev))
	p.Labels = append(p.Labels, ">"+seconds(uppers[len(uppers)-1]))
	p.Series = []series{{Name: "verifications", Values: counts}}
	p.Tips = slices.Clone(p.Labels)
	for i := range p.Labels {
		if len(p.Labels) > 8 && i%2 == 1 {
			p.Labels[i] = "" // every other label, so that they fit
		}
	}
	if total == 0 {
		p.Summary = "No session was verified since lapse started."
		return p, ""
	}
	q := func(f float64) string { return seconds(quantile(f, uppers, counts, total)) }
	p.Summary = fmt.Sprintf("%s verifications since lapse started: median about %s, 90th percentile about %s, 99th about %s; mean %s. Quantiles are estimated within the histogram's buckets.",
		formatNumber(float64(total)), q(0.5), q(0.9), q(0.99), seconds(h.GetSampleSum()/float64(total)))
	return p, ""
}

// quantile estimates the f-quantile from bucket counts the way
// Prometheus's histogram_quantile does: linearly within the bucket that
// holds it. The open last bucket answers its lower bound.
func quantile(f float64, uppers, counts []float64, total uint64) float64 {
	rank := f * float64(total)
	cum, lower := 0.0, 0.0
	for i, n := range counts {
		if i == len(uppers) {
			return lower
		}
		if cum+n >= rank && n > 0 {
			return lower + (uppers[i]-lower)*(rank-cum)/n
		}
		cum += n
		lower = uppers[i]
	}
	return lower
}

// seconds writes a duration given in seconds compactly, to two or three
// significant digits: "25µs", "1.5ms", "295µs".
func seconds(s float64) string {
	v, unit := s*1e9, "ns"
	for _, u := range []struct {
		scale float64
		name  string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}} {
		if s*1e9 >= u.scale {
			v, unit = s*1e9/u.scale, u.name
			break
		}
	}
	prec := 0
	if v < 10 {
		prec = 1
	}
	out := strconv.FormatFloat(v, 'f', prec, 64)
	return strings.TrimSuffix(out, ".0") + unit
}
