package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// plot is a chart drawn as inline SVG: lines through points, or bars
// stacked per bucket. Colours come from the style sheet's classes c0,
// c1..., and lines also differ by dash pattern, so that no series is
// told apart by colour alone; every chart also has a text summary and
// a data table.
type plot struct {
	ID    string // unique on the page, for aria references
	Title string
	// Summary says in words what the chart shows.
	Summary string
	// Labels name each point (lines) or bar (bars) on the x axis; empty
	// labels are not drawn. Tips name them in full, for tooltips.
	Labels []string
	Tips   []string
	Series []series
	Bars   bool
	// YLabel names the y axis unit.
	YLabel string
}

type series struct {
	Name   string
	Values []float64
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 720.0, 280.0
	padL, padR     = 68.0, 16.0
	padT, padB     = 14.0, 36.0
)

var dashes = []string{"", "9 4", "3 3", "12 4 3 4", "1 3", "8 3 2 3 2 3"}

// SVG draws the chart.
func (p plot) SVG() template.HTML {
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-t %s-d" preserveAspectRatio="xMidYMid meet">`,
		chartW, chartH, p.ID, p.ID)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, p.ID, esc(p.Title), p.ID, esc(p.Summary))
	top := p.maxY()
	ticks := niceTicks(top)
	top = ticks[len(ticks)-1]
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	// Grid and y axis.
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y(t), y(t))
		fmt.Fprintf(&b, `<text class="tick" x="%g" y="%.1f" text-anchor="end" dy="0.32em">%s</text>`, padL-6, y(t), formatNumber(t))
	}
	if p.YLabel != "" {
		fmt.Fprintf(&b, `<text class="tick" x="12" y="%g" transform="rotate(-90 12 %g)" text-anchor="middle">%s</text>`,
			padT+plotH/2, padT+plotH/2, esc(p.YLabel))
	}
	n := len(p.Labels)
	var x func(i int) float64
	var slot float64
	if p.Bars {
		slot = plotW / float64(max(n, 1))
		x = func(i int) float64 { return padL + slot*(float64(i)+0.5) }
	} else {
		x = func(i int) float64 { return padL + plotW*float64(i)/float64(max(n-1, 1)) }
	}
	for i, l := range p.Labels {
		if l == "" {
			continue
		}
		fmt.Fprintf(&b, `<line class="axis" x1="%.1f" x2="%.1f" y1="%g" y2="%g"/>`, x(i), x(i), padT+plotH, padT+plotH+4)
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%g" text-anchor="middle">%s</text>`, x(i), padT+plotH+18, esc(l))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%g" x2="%g" y1="%g" y2="%g"/>`, padL, chartW-padR, padT+plotH, padT+plotH)
	if p.Bars {
		w := math.Max(slot*0.8, 1)
		for i := range n {
			base := 0.0
			for si, s := range p.Series {
				v := s.Values[i]
				if v <= 0 {
					continue
				}
				fmt.Fprintf(&b, `<rect class="c%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %s %s</title></rect>`,
					si%8, x(i)-w/2, y(base+v), w, y(base)-y(base+v), esc(p.tip(i)), esc(s.Name), formatNumber(v))
				base += v
			}
		}
	} else {
		for si, s := range p.Series {
			pts := make([]string, len(s.Values))
			for i, v := range s.Values {
				pts[i] = fmt.Sprintf("%.1f,%.1f", x(i), y(v))
			}
			dash := ""
			if d := dashes[si%len(dashes)]; d != "" {
				dash = ` stroke-dasharray="` + d + `"`
			}
			fmt.Fprintf(&b, `<polyline class="line c%d"%s points="%s"><title>%s</title></polyline>`, si%8, dash, strings.Join(pts, " "), esc(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func (p plot) tip(i int) string {
	if i < len(p.Tips) {
		return p.Tips[i]
	}
	return p.Labels[i]
}

// Legend returns the series with their class and dash, for the HTML
// legend under the chart.
func (p plot) Legend() []legendEntry {
	out := make([]legendEntry, len(p.Series))
	for i, s := range p.Series {
		out[i] = legendEntry{Name: s.Name, Class: "c" + strconv.Itoa(i%8), Dash: !p.Bars && dashes[i%len(dashes)] != ""}
	}
	return out
}

type legendEntry struct {
	Name  string
	Class string
	Dash  bool
}

// Rows returns the chart's data as table rows: the full label of each
// point or bar, then each series' value.
func (p plot) Rows() [][]string {
	rows := make([][]string, len(p.Labels))
	for i := range p.Labels {
		row := []string{p.tip(i)}
		for _, s := range p.Series {
			row = append(row, formatNumber(s.Values[i]))
		}
		rows[i] = row
	}
	return rows
}

func (p plot) maxY() float64 {
	top := 0.0
	if p.Bars {
		for i := range p.Labels {
			sum := 0.0
			for _, s := range p.Series {
				sum += s.Values[i]
			}
			top = math.Max(top, sum)
		}
		return top
	}
	for _, s := range p.Series {
		for _, v := range s.Values {
			top = math.Max(top, v)
		}
	}
	return top
}

// niceTicks returns 0 and evenly spaced round values up to at least top.
func niceTicks(top float64) []float64 {
	if top <= 0 {
		return []float64{0, 1}
	}
	raw := top / 5 // at most five steps
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if step < 1 && top >= 1 {
		step = 1
	}
	var ticks []float64
	for v := 0.0; ; v += step {
		ticks = append(ticks, v)
		if v >= top-1e-9 {
			return ticks
		}
	}
}

// formatNumber writes v without a fraction when it is whole, with
// thousands separated by commas.
func formatNumber(v float64) string {
	if v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(v), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
