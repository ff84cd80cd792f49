package probe_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
)

// The probetest apps' timeouts: second-scale, for the tests that run on real time
// over TLS; the others run them in virtual time.
const (
	idle     = 2 * time.Second
	absolute = 4 * time.Second
)

// probeApp serves app over TLS on loopback and probes it. Safe to call from any
// goroutine.
func probeApp(app *probetest.App, kind probetest.Kind, opts probe.Options) (*probe.Report, error) {
	srv := httptest.NewUnstartedServer(app)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // closing with idle TLS connections is not news
	srv.StartTLS()
	defer srv.Close()
	target, err := probe.ParseTarget("app.yaml", app.TargetFile(srv.URL, kind, ""), probetest.Env)
	if err != nil {
		return nil, err
	}
	opts.Transport = srv.Client().Transport
	return probe.Run(context.Background(), target, opts)
}

func TestRunFindsEachFlawAndOnlyIt(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		flaw  probetest.Flaw
		kind  probetest.Kind
		fail  string   // the one check that must fail; "" for none
		skips []string // checks that do not apply
	}{
		{name: "sound_web_app", flaw: probetest.Sound},
		{name: "sound_api", flaw: probetest.Sound, kind: probetest.API, skips: []string{"cookie-attributes", "fixation"}},
		{name: "logout_clears_cookie_only", flaw: probetest.LogoutClearsCookieOnly, fail: "logout-invalidates"},
		{name: "no_idle_timeout", flaw: probetest.NoIdleTimeout, fail: "idle-timeout"},
		{name: "fixation", flaw: probetest.Fixation, fail: "fixation"},
		{name: "weak_cookies", flaw: probetest.WeakCookies, fail: "cookie-attributes"},
		{name: "predictable_tokens", flaw: probetest.PredictableTokens, fail: "token-entropy"},
		{name: "password_change_keeps_sessions", flaw: probetest.PasswordChangeKeepsSessions, fail: "password-change-revokes"},
		{name: "api_logout_keeps_tokens", flaw: probetest.LogoutClearsCookieOnly, kind: probetest.API, fail: "logout-invalidates", skips: []string{"cookie-attributes", "fixation"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// In a synctest bubble, over an in-memory transport: the
			// timeouts pass in virtual time, however busy the machine.
			synctest.Test(t, func(t *testing.T) {
				app := probetest.NewApp(tc.flaw, idle, absolute)
				rep := runVirtual(t, app, app.TargetFile("https://app.test", cmp.Or(tc.kind, probetest.Web), ""))
				for _, c := range rep.Checks {
					want := probe.Pass
					switch {
					case c.ID == tc.fail:
						want = probe.Fail
					case slices.Contains(tc.skips, c.ID):
						want = probe.Skip
					}
					if c.Status != want {
						t.Errorf("%s: got %s, want %s\n  detail: %s\n  evidence:\n    %s", c.ID, c.Status, want, c.Detail, strings.Join(c.Evidence, "\n    "))
					}
				}
				if got, want := rep.Failed(), tc.fail != ""; got != want {
					t.Errorf("Failed() = %v, want %v", got, want)
				}
				assertNoSecrets(t, rep, app.Issued())
			})
		})
	}
}

// assertNoSecrets checks that no output format shows any token the app issued.
func assertNoSecrets(t *testing.T, rep *probe.Report, issued []string) {
	t.Helper()
	var out bytes.Buffer
	for _, write := range []func() error{
		func() error { return rep.WriteJSON(&out) },
		func() error { return rep.WriteText(&out, true) },
		func() error { return rep.WriteJUnit(&out) },
		func() error { return rep.WriteHTML(&out) },
	} {
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}
	if len(issued) == 0 {
		t.Fatal("the app issued no tokens")
	}
	for _, tok := range issued {
		if strings.Contains(out.String(), tok) {
			t.Errorf("a report shows the token %.6s… in full", tok)
		}
	}
}

func TestReportJSONShape(t *testing.T) {
	t.Parallel()
	app := probetest.NewApp(probetest.WeakCookies, idle, absolute)
	rep, err := probeApp(app, probetest.Web, probe.Options{Checks: []string{"cookie-attributes", "cache-headers"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Target   string    `json:"target"`
		Started  time.Time `json:"started"`
		Finished time.Time `json:"finished"`
		Checks   []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Target == "" || got.Started.IsZero() || got.Finished.Before(got.Started) {
		t.Errorf("target/started/finished = %q %v %v, want a name and an ordered span", got.Target, got.Started, got.Finished)
	}
	if len(got.Checks) != 9 {
		t.Fatalf("got %d checks, want 9", len(got.Checks))
	}
	for _, c := range got.Checks {
		for _, key := range []string{"id", "status", "wstg", "asvs", "detail", "evidence"} {
			if _, ok := c[key]; !ok {
				t.Errorf("check %v has no %q", c["id"], key)
			}
		}
	}
	statuses := map[string]any{}
	for _, c := range got.Checks {
		statuses[c["id"].(string)] = c["status"]
	}
	want := map[string]any{"cookie-attributes": "fail", "cache-headers": "pass", "idle-timeout": "skip"}
	for id, s := range want {
		if statuses[id] != s {
			t.Errorf("%s: got status %v, want %v", id, statuses[id], s)
		}
	}
}
