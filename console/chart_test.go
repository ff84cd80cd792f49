package console

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func TestNiceTicksCoverTheTopInAtMostSixRoundSteps(t *testing.T) {
	for top, want := range map[float64][]float64{
		0:     {0, 1},
		3:     {0, 1, 2, 3},
		15:    {0, 5, 10, 15},
		112:   {0, 25, 50, 75, 100, 125},
		13793: {0, 5000, 10000, 15000},
	} {
		if got := niceTicks(top); !slices.Equal(got, want) {
			t.Errorf("niceTicks(%v) = %v, want %v", top, got, want)
		}
	}
}

func TestSecondsKeepsTwoOrThreeDigits(t *testing.T) {
	for s, want := range map[float64]string{
		0.00001: "10µs", 0.0002949: "295µs", 0.0000015: "1.5µs", 0.0042: "4.2ms", 0.1: "100ms", 2.5: "2.5s", 0.0000005: "500ns",
	} {
		if got := seconds(s); got != want {
			t.Errorf("seconds(%v) = %q, want %q", s, got, want)
		}
	}
}

func TestQuantileInterpolatesWithinTheBucket(t *testing.T) {
	uppers := []float64{1, 2, 4}
	counts := []float64{10, 10, 0, 5} // the last is the open bucket above 4
	for f, want := range map[float64]float64{0.2: 0.5, 0.6: 1.5, 0.99: 4} {
		if got := quantile(f, uppers, counts, 25); got != want {
			t.Errorf("quantile(%v) = %v, want %v", f, got, want)
		}
	}
}

func TestLocalPathStaysInTheConsole(t *testing.T) {
	for in, want := range map[string]string{
		"/console/sessions?subject=a": "/console/sessions?subject=a",
		"https://evil.example/":       "/fallback",
		"//evil.example/console/":     "/fallback",
		"/console/../v1/keys":         "/fallback",
		"/console/%2e%2e/v1":          "/fallback",
		"/v1/sessions":                "/fallback",
		"/console/\\evil":             "/fallback",
		"":                            "/fallback",
	} {
		if got := localPath(in, "/fallback"); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestActivityWalksBackFromNow(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 7, 0, 0, time.UTC)
	a := &activity{n: 4, bucket: 15 * time.Minute, label: time.Hour, now: now,
		created: map[string][]int{"standard": {2, 0, 1, 0}}, ended: map[string][]int{"standard": {0, 1, 0, 1}}}
	a.start = now.Truncate(a.bucket).Add(-3 * a.bucket) // 11:15
	got := a.activeByTier(map[string]int{"standard": 5})["standard"]
	// Now 5; the last bucket ended 1: 6 at its start; then +1 created: 5;
	// then 1 ended: 6; then 2 created: 4.
	if want := []float64{4, 6, 5, 6, 5}; !slices.Equal(got, want) {
		t.Errorf("active = %v, want %v", got, want)
	}
	labels, tips := a.labels(true)
	if labels[0] != "" || labels[3] != "12:00" || !strings.HasPrefix(tips[4], "now (") {
		t.Errorf("labels = %q, tips = %q: want 12:00 on the hour and the last point now", labels, tips)
	}
}

func TestShortIDKeepsThePrefixAndEightCharacters(t *testing.T) {
	if got := shortID("ses_4X7aK2n0Q60KsVIYitYlLr"); got != "ses_4X7aK2n0…" {
		t.Errorf("shortID = %q", got)
	}
	if got := shortID("odd"); got != "odd" {
		t.Errorf("shortID(odd) = %q", got)
	}
}

func TestReasonLabelSaysExpiredOrRevoked(t *testing.T) {
	if reasonLabel(lapse.ReasonIdleTimeout) != "expired: idle" || reasonLabel(lapse.ReasonPasswordChange) != "revoked: password change" {
		t.Errorf("reason labels: %q, %q", reasonLabel(lapse.ReasonIdleTimeout), reasonLabel(lapse.ReasonPasswordChange))
	}
}

func TestEndedSummaryCountsInWords(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 7, 0, 0, time.UTC)
	w := windows[0]
	for n, want := range map[int]string{1: "1 session ended in the last 1h", 2: "2 sessions ended in the last 1h"} {
		a := &activity{n: 4, bucket: w.Bucket, label: w.Label, now: now, start: now.Add(-3 * w.Bucket),
			reasons: map[lapse.Reason][]int{lapse.ReasonAdmin: {0, n, 0, 0}}}
		if got := endedPlot(a, w).Summary; !strings.HasPrefix(got, want+":") {
			t.Errorf("%d ended: summary %q, want it to start %q", n, got, want)
		}
	}
}

func TestSignalsChartCountsEachKind(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 7, 0, 0, time.UTC)
	w := windows[0]
	a := &activity{n: 4, bucket: w.Bucket, label: w.Label, now: now, start: now.Add(-3 * w.Bucket),
		created: map[string][]int{}, ended: map[string][]int{}, reasons: map[lapse.Reason][]int{}, signals: map[lapse.EventType][]int{}}
	if got := signalsPlot(a, w).Summary; !strings.HasPrefix(got, "No sign of suspicious activity") {
		t.Errorf("no signals: summary %q", got)
	}
	inc := func(m map[string][]int, k string, i int) {}
	a.add(lapse.Event{Type: lapse.EventNewDevice}, 1, inc)
	a.add(lapse.Event{Type: lapse.EventNewDevice}, 2, inc)
	a.add(lapse.Event{Type: lapse.EventTokenGuessing}, 3, inc)
	a.add(lapse.Event{Type: lapse.EventRevoked, Reason: lapse.ReasonTheft}, 3, inc)
	p := signalsPlot(a, w)
	if want := "In the last 1h: 2 new device, 1 token guessing."; !strings.HasPrefix(p.Summary, want) {
		t.Errorf("summary %q, want it to start %q", p.Summary, want)
	}
	if len(p.Series) != 2 || p.Series[0].Name != "new device" || !slices.Equal(p.Series[0].Values, []float64{0, 1, 1, 0}) {
		t.Errorf("series %+v, want new device 0,1,1,0 then token guessing", p.Series)
	}
	if a.reasons[lapse.ReasonTheft][3] != 1 {
		t.Errorf("a revocation for theft is not counted among the ended sessions")
	}
}
