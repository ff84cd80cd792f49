package probe

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

//go:embed report.html
var reportHTML string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
	"took": func(a, b time.Time) string { return b.Sub(a).Round(time.Millisecond).String() },
}).Parse(reportHTML))

// WriteHTML writes the report as a self-contained HTML page a person can read, with a
// timeline of the sessions each timeout check watched. Control characters in any field
// are written as escapes.
func (r *Report) WriteHTML(w io.Writer) error {
	r = r.printable()
	type check struct {
		Result
		Chart *chart
	}
	view := struct {
		*Report
		Pass, Fail, Skip, Error int
		Items                   []check
	}{Report: r, Pass: r.Count(Pass), Fail: r.Count(Fail), Skip: r.Count(Skip), Error: r.Count(Error)}
	for _, c := range r.Checks {
		view.Items = append(view.Items, check{c, newChart(c)})
	}
	return reportTemplate.Execute(w, view)
}

// chart is an SVG timeline of a check's lanes, laid out for the template.
type chart struct {
	Width, Height   int
	Axis            string
	Band            *chartBand // the expected window
	Lanes           []chartLane
	Ticks           []chartTick
	Left, Right, Ys int
}

type chartBand struct{ X, W float64 }

type chartLane struct {
	Label string // as shown, shortened to fit
	Full  string // in full, as the label's tooltip
	Y     int
	End   float64
	Marks []chartMark
}

type chartMark struct {
	X        float64
	Accepted bool
	Title    string
}

type chartTick struct {
	X     float64
	Label string
}

func newChart(r Result) *chart {
	if len(r.Timeline) == 0 {
		return nil
	}
	span := 0.0
	for _, l := range r.Timeline {
		for _, m := range l.Marks {
			span = math.Max(span, m.After)
		}
	}
	if r.Expected != nil {
		span = math.Max(span, r.Expected.Max)
	}
	span = math.Max(span*1.1, 0.001)
	// Labels get the room the longest needs, at about 6.2 pixels a character, within
	// bounds; longer ones are cut, with the whole label as a tooltip.
	longest := 0
	for _, l := range r.Timeline {
		longest = max(longest, utf8.RuneCountInString(l.Label))
	}
	left := min(max(int(float64(longest)*6.2)+16, 190), 320)
	c := &chart{Width: 760, Left: left, Right: 740, Axis: "seconds since the session's clock started"}
	switch r.ID {
	case "idle-timeout":
		c.Axis = "seconds without activity"
	case "absolute-timeout":
		c.Axis = "seconds since sign-in"
	case "logout-invalidates":
		c.Axis = "seconds since sign-out"
	}
	x := func(s float64) float64 { return math.Round((float64(c.Left)+s/span*float64(c.Right-c.Left))*10) / 10 }
	for i, l := range r.Timeline {
		lane := chartLane{Label: cut(l.Label, int(float64(left-16)/6.2)), Full: l.Label, Y: 20 + i*24}
		for _, m := range l.Marks {
			lane.Marks = append(lane.Marks, chartMark{X: x(m.After), Accepted: m.Accepted,
				Title: fmt.Sprintf("%s at %s", verdict(m.Accepted), secs(m.After))})
			lane.End = x(m.After)
		}
		c.Lanes = append(c.Lanes, lane)
	}
	c.Ys = 20 + len(r.Timeline)*24
	c.Height = c.Ys + 34
	if e := r.Expected; e != nil {
		c.Band = &chartBand{X: x(e.Min), W: math.Round((x(e.Max)-x(e.Min))*10) / 10}
	}
	for i := range 5 {
		s := span / 1.1 * float64(i) / 4
		c.Ticks = append(c.Ticks, chartTick{X: x(s), Label: secs(s)})
	}
	return c
}

// cut shortens s to n characters, ending it with an ellipsis when it was longer.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
