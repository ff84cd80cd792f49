package probe_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
)

// hostilePath is where a hostile target redirects: a terminal escape that clears the
// screen, one that sets the window title, a C1 CSI and a right-to-left override.
const hostilePath = "/%1B%5B2J%1B%5D0;owned%07%C2%9B31m%E2%80%AEtxt.exe"

// TestReportsEscapeControlCharacters has a target redirect "sign out everywhere" to a
// path full of control characters, and checks that neither the text nor the HTML report
// writes one of them raw, while both still show where the target pointed.
func TestReportsEscapeControlCharacters(t *testing.T) {
	app := probetest.NewApp(probetest.Sound, time.Minute, time.Hour)
	hostile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/logout-all" {
			http.Redirect(w, r, hostilePath, http.StatusSeeOther)
			return
		}
		app.ServeHTTP(w, r)
	})
	rep := probeHandler(t, app, hostile, "concurrent-logout")
	for _, c := range rep.Checks {
		if c.ID == "concurrent-logout" && (c.Status != probe.Error || !strings.Contains(c.Detail, "owned")) {
			t.Fatalf("concurrent-logout: got %s %q, want an error naming the hostile path", c.Status, c.Detail)
		}
	}
	assertEscaped(t, rep, `/\x1b[2J\x1b]0;owned\x07\u009b31m\u202etxt.exe`)
}

// TestReportsEscapeEveryField fills every string of a report with control characters
// and checks that the text and HTML reports write none of them raw.
func TestReportsEscapeEveryField(t *testing.T) {
	const evil = "a\x1b[31mb\rc\u009bd\u202ee\xff"
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rep := &probe.Report{Target: evil, Started: start, Finished: start.Add(time.Second), Checks: []probe.Result{{
		ID: "idle-timeout", Status: probe.Fail, WSTG: "WSTG-SESS-07", ASVS: []string{evil}, Detail: evil, Evidence: []string{evil},
		Timeline: []probe.Lane{{Label: evil, Start: start, Marks: []probe.Mark{{After: 1, Accepted: true}}}},
		Expected: &probe.Window{Min: 0.5, Max: 1.5},
	}}}
	assertEscaped(t, rep, `a\x1b[31mb\x0dc\u009bd\u202ee\xff`)
}

// assertEscaped checks that the text and HTML forms of rep hold no control character
// but newlines, and show want.
func assertEscaped(t *testing.T, rep *probe.Report, want string) {
	t.Helper()
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"text", func(b *bytes.Buffer) error { return rep.WriteText(b, true) }},
		{"html", func(b *bytes.Buffer) error { return rep.WriteHTML(b) }},
	} {
		var out bytes.Buffer
		if err := f.write(&out); err != nil {
			t.Fatal(err)
		}
		for i, r := range out.String() {
			if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || r == 0x202e || r == utf8.RuneError {
				t.Errorf("%s report: raw %U at byte %d: %q", f.name, r, i, out.String()[max(0, i-40):min(out.Len(), i+20)])
				break
			}
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s report does not show %s:\n%s", f.name, want, out.String())
		}
	}
}
