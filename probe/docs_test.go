package probe_test

import (
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
)

// TestDocsWorkedExamples runs the worked examples of docs/probe.md, as they are, against
// the probetest apps they describe, with their own fifteen-minute and eight-hour
// timeouts in virtual time, and checks what the docs say they find.
func TestDocsWorkedExamples(t *testing.T) {
	const pair = "cookies __Host-remember-series+__Host-remember-token (session.cookies)"
	cases := []struct {
		name string
		file string
		flaw probetest.Flaw
		want map[string]expectation
	}{
		{"remember_me_ended_by_logout", "probe-remember-me.yaml", probetest.Sound, map[string]expectation{
			"logout-invalidates": {probe.Pass, []string{
				"accepted (GET /account → 200)",
				"after sign-in: " + pair + ": signed the browser back in, with a new cookie __Host-sid (GET /account → 303 /remember-me?to=/account → 303 /account → 200)",
				"after sign-out: " + pair + ": refused"}},
			"idle-timeout": {probe.Pass, []string{pair + " signed the browser back in"}},
		}},
		{"remember_me_survives_logout", "probe-remember-me.yaml", probetest.RememberMeSurvivesLogout, map[string]expectation{
			"logout-invalidates": {probe.Fail, []string{pair + " still signed the browser back in 10m0s after sign-out, when the watch ended"}},
		}},
		{"remember_me_lasts_a_week", "probe-remember-me.yaml", probetest.RememberMeOutlivesAbsolute, map[string]expectation{
			"cookie-attributes": {probe.Fail, []string{"__Host-remember-token: persists for 7 days, beyond the absolute timeout"}},
			"absolute-timeout":  {probe.Fail, []string{"still authenticating 8h1m0s after sign-in: " + pair + ", signing the browser back in"}},
		}},
		{"json_web_tokens", "probe-jwt-api.yaml", probetest.Sound, map[string]expectation{
			"token-entropy":     {probe.Pass, []string{"JSON Web Tokens", "within the absolute timeout (claimed lifetime 15m0s)"}},
			"cookie-attributes": skipCookies, "fixation": skipFixing,
			"logout-invalidates":      {probe.Fail, []string{"the token (a JSON Web Token) was still accepted 10m0s after sign-out, when the watch ended; a stateless token cannot be ended server-side, and its exp claim ends it 15m0s after sign-out", "after sign-out: refresh token"}},
			"password-change-revokes": {probe.Fail, []string{"its token (a JSON Web Token) was still accepted; a stateless token cannot be ended server-side"}},
			"concurrent-logout":       {probe.Fail, []string{"its token (a JSON Web Token) was still accepted"}},
			"idle-timeout":            {probe.Pass, []string{"the session ended after"}},
			"absolute-timeout":        {probe.Pass, []string{"8h1m0s after sign-in: refresh token"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file, err := os.ReadFile("../docs/examples/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) {
				app := probetest.NewApp(tc.flaw, 15*time.Minute, 8*time.Hour)
				rep := runVirtual(t, app, file)
				assertVerdicts(t, rep, tc.want)
				assertNoSecrets(t, rep, app.Issued())
			})
		})
	}
}

// TestDocsShowTheTestedExamples checks that the worked examples docs/probe.md shows are
// the files the tests run, their comments aside.
func TestDocsShowTheTestedExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/probe.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"probe-remember-me.yaml", "probe-jwt-api.yaml"} {
		file, err := os.ReadFile("../docs/examples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(file), "\n") {
			switch {
			case strings.HasPrefix(strings.TrimSpace(l), "#"):
			case strings.TrimSpace(l) == "" && (len(lines) == 0 || lines[len(lines)-1] == ""):
			default:
				lines = append(lines, l)
			}
		}
		block := "```yaml\n" + strings.TrimSpace(strings.Join(lines, "\n")) + "\n```"
		if !strings.Contains(string(doc), block) {
			t.Errorf("docs/probe.md does not show %s as it is (comments aside):\n%s", name, block)
		}
	}
}
