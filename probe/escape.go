package probe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable returns s with every character that could steer a terminal or reorder
// text written as an escape: C0 and C1 controls (ESC, CSI, newline, tab...), DEL, line
// and paragraph separators, bidirectional overrides and isolates, and bytes that are
// not UTF-8. A target under test chooses much of what a report shows (paths it
// redirects to, headers, token prefixes), and a report is read in terminals.
func printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c: // bidi
		return true
	}
	return false
}

// printable returns a copy of the report with every string a target could have shaped
// escaped by [printable].
func (r *Report) printable() *Report {
	out := *r
	out.Target = printable(r.Target)
	out.Checks = make([]Result, len(r.Checks))
	for i, c := range r.Checks {
		c.Detail = printable(c.Detail)
		c.Evidence = escapeAll(c.Evidence)
		c.ASVS = escapeAll(c.ASVS)
		c.ID, c.WSTG, c.Status = printable(c.ID), printable(c.WSTG), Status(printable(string(c.Status)))
		lanes := make([]Lane, len(c.Timeline))
		for j, l := range c.Timeline {
			l.Label = printable(l.Label)
			lanes[j] = l
		}
		if c.Timeline != nil {
			c.Timeline = lanes
		}
		out.Checks[i] = c
	}
	return &out
}

func escapeAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = printable(s)
	}
	return out
}
