package console

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
)

// funcs are the helpers the templates use. Times are shown in UTC.
var funcs = template.FuncMap{
	"utc": utc,
	"utcm": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"short":  shortID,
	"rel":    rel,
	"dur":    compliance.FormatDuration,
	"tenant": tenantLabel,
	"status": statusLabel,
	"ends":   ends,
	"reason": func(r lapse.Reason) string { return strings.ReplaceAll(string(r), "_", " ") },
	"join":   strings.Join,
	"int":    func(n int) string { return formatNumber(float64(n)) },
	"nz":     func(n int) bool { return n != 0 },
	"int64":  func(n int64) string { return formatNumber(float64(n)) },
}

// utc writes t as "2006-01-02 15:04:05", or a dash for the zero time.
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// rel writes how far t is from now: "in 12 min", "3 h ago".
func rel(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	if d > -time.Second && d < time.Second {
		return "now"
	}
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
		s = strings.TrimSuffix(s, " 0 min")
	default:
		s = fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

func tenantLabel(t string) string {
	if t == "" {
		return "(platform)"
	}
	return t
}

// statusLabel writes a session's status with its end reason.
func statusLabel(s *lapse.Session) string {
	if s.Status == lapse.StatusActive {
		return "active"
	}
	return string(s.Status) + ": " + strings.ReplaceAll(string(s.EndReason), "_", " ")
}

// ends says when a session ends or ended, relative to now.
func ends(now time.Time, s *lapse.Session) string {
	if s.Status != lapse.StatusActive {
		return utc(s.EndedAt)
	}
	which := "idle"
	if !s.ExpiresAt.After(s.IdleExpiresAt) {
		which = "absolute"
	}
	return rel(now, s.Deadline()) + " (" + which + ")"
}

// shortID shortens a public id for a table, like a short commit hash:
// its prefix and first 8 random characters (48 bits) stay.
func shortID(id string) string {
	_, rest, ok := strings.Cut(id, "_")
	if !ok || len(rest) <= 10 {
		return id
	}
	return id[:len(id)-len(rest)+8] + "…"
}
