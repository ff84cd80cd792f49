package probe

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse/probe/probetest"
)

// FuzzParseTarget checks that no target file makes ParseTarget panic, and that a file it
// accepts is a usable target.
func FuzzParseTarget(f *testing.F) {
	app := probetest.NewApp(probetest.Sound, time.Minute, time.Hour)
	f.Add(app.TargetFile("https://app.example", false, ""))
	f.Add(app.TargetFile("https://app.example", true, "checks:\n  skip: [fixation]\n"))
	f.Add([]byte("base_url: ${X}\nlogin: &a {url: /l, json: {a: [1, {b: '{{password}}'}]}}\nlogout: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("policy: {idle_timeout: 30d, tolerance: -1s}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tg, err := ParseTarget("fuzz.yaml", data, probetest.Env)
		if err != nil {
			return
		}
		if tg.BaseURL == "" || tg.Login.URL == "" || tg.Authenticated.Status == 0 || tg.Login.Method == "" {
			t.Errorf("accepted a target without base_url, login or defaults: %+v", tg)
		}
		if _, err := newClient(tg, nil); err != nil {
			t.Errorf("accepted base_url %q that the client cannot use: %v", tg.BaseURL, err)
		}
	})
}
