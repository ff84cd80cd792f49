package probe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
)

// memTransport serves requests with a handler in memory, so that a whole run, app and
// probe, can take place in a synctest bubble where waiting costs no real time.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RequestURI, in.RemoteAddr = req.URL.RequestURI(), "192.0.2.1:4711"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// TestRunMeasuresRealisticTimeouts probes 15-minute idle and 8-hour absolute timeouts in
// virtual time and checks that the measured brackets hold the true values.
func TestRunMeasuresRealisticTimeouts(t *testing.T) {
	const idle, absolute = 15 * time.Minute, 8 * time.Hour
	cases := []struct {
		name       string
		flaw       probetest.Flaw
		appIdle    time.Duration // what the app enforces; the target file expects idle
		idleStatus probe.Status
		detail     string
	}{
		{"as_expected", probetest.Sound, idle, probe.Pass, "the session ended after 13m7.5s–15m0s of inactivity"},
		{"never_idles_out", probetest.NoIdleTimeout, idle, probe.Fail, "still accepted after 18m45s of inactivity"},
		{"idles_out_too_soon", probetest.Sound, 10 * time.Minute, probe.Fail, "already refused after 11m15s of inactivity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				app := probetest.NewApp(tc.flaw, tc.appIdle, absolute)
				file := string(app.TargetFile("https://app.test", probetest.Web, ""))
				file = strings.Replace(file, "idle_timeout: "+tc.appIdle.String(), "idle_timeout: "+idle.String(), 1)
				file = strings.Replace(file, "tolerance: "+(tc.appIdle/4).String(), "tolerance: "+(idle/4).String(), 1)
				target, err := probe.ParseTarget("app.yaml", []byte(file), probetest.Env)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := probe.Run(context.Background(), target, probe.Options{Transport: memTransport{app}})
				if err != nil {
					t.Fatal(err)
				}
				if took := rep.Finished.Sub(rep.Started); took < absolute || took > absolute+idle {
					t.Errorf("the run took %v of virtual time, want about the absolute timeout %v", took, absolute)
				}
				for _, c := range rep.Checks {
					switch c.ID {
					case "idle-timeout":
						if c.Status != tc.idleStatus || !strings.Contains(c.Detail, tc.detail) {
							t.Errorf("idle-timeout: got %s %q, want %s %q", c.Status, c.Detail, tc.idleStatus, tc.detail)
						}
					case "absolute-timeout":
						if m := c.Measured; c.Status != probe.Pass || m == nil || m.Min >= absolute.Seconds() || m.Max < absolute.Seconds() {
							t.Errorf("absolute-timeout: got %s, measured %v (%s), want a pass bracketing %v", c.Status, m, c.Detail, absolute)
						}
					default:
						if c.Status != probe.Pass {
							t.Errorf("%s: got %s (%s), want pass", c.ID, c.Status, c.Detail)
						}
					}
				}
			})
		})
	}
}
