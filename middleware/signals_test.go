package middleware_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/middleware"
)

// TestClientDrift: the middleware tells the manager who the client is
// (Config.ClientIP, the User-Agent), so a tier's client_drift applies to
// requests through it as to the API.
func TestClientDrift(t *testing.T) {
	const ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	for _, c := range []struct {
		action     lapse.DriftAction
		status     int
		code       lapse.Code
		key, value string
	}{
		{lapse.DriftAllow, 200, "", "", ""},
		{lapse.DriftStepUp, 403, lapse.CodeStepUpRequired, "reason", "network_changed"},
		{lapse.DriftRevoke, 401, lapse.CodeSessionRevoked, "end_reason", "theft"},
	} {
		t.Run(string(c.action), func(t *testing.T) {
			pol := &lapse.Policy{DefaultTier: "t", Tiers: map[string]lapse.Tier{
				"t": {IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, ClientDrift: c.action}}}
			m, _, _ := lapsetest.NewManager(t, lapse.Config{Policy: pol})
			mw, err := middleware.New(middleware.Config{Manager: m})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "https://app.example/signin", nil)
			r.RemoteAddr, r.Header["User-Agent"] = "192.0.2.10:5000", []string{ua}
			if _, err := mw.Login(w, r, lapse.CreateParams{Subject: "alice"}); err != nil {
				t.Fatal(err)
			}
			cookie := sessionCookie(t, w.Result())
			api := mw.API(middleware.Requirement{})(new(seen).handler())
			home := get("/api/x", cookie)
			home.RemoteAddr, home.Header["User-Agent"] = "192.0.2.77:5000", []string{ua}
			if resp := do(api, home); resp.StatusCode != 200 {
				t.Fatalf("from the session's own network: %d, want 200", resp.StatusCode)
			}
			away := get("/api/x", cookie)
			away.RemoteAddr, away.Header["User-Agent"] = "203.0.113.9:5000", []string{ua}
			if c.code == "" {
				if resp := do(api, away); resp.StatusCode != c.status {
					t.Fatalf("from another network: %d, want %d", resp.StatusCode, c.status)
				}
				return
			}
			p := wantProblem(t, do(api, away), c.status, c.code)
			if p[c.key] != c.value {
				t.Errorf("problem %v, want %s %q", p, c.key, c.value)
			}
		})
	}
}
