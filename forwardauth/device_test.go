package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/dbsc/dbsctest"
	"github.com/lapsehq/lapse/lapsetest"
)

// TestDeviceBoundSessionsNeedTheirBoundCookie: a session bound through
// the gateway's own routes (registration under /.lapse/dbsc/) passes the
// proxy's question only with its bound cookie.
func TestDeviceBoundSessionsNeedTheirBoundCookie(t *testing.T) {
	p := lapsetest.Policy()
	std := p.Tiers["standard"]
	std.DeviceBinding, std.OnTheft = lapse.DeviceBindingPreferred, lapse.TheftRecord
	p.Tiers["standard"] = std
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Policy: p})
	g, err := New(Config{Manager: m, Rules: testRules, DeviceBinding: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)
	mux.Handle(g.Device().Prefix(), g.Device().Handler())
	f := &fixture{t: t, m: m, clock: clock, g: g, mux: mux}

	tok, s := f.session(lapse.CreateParams{AAL: 1})
	w := httptest.NewRecorder()
	if err := g.Device().Offer(w, httptest.NewRequest("GET", "/", nil), s); err != nil {
		t.Fatal(err)
	}
	_, params := dbsctest.Params(w.Header().Get(dbsc.HeaderRegistration))
	if params["path"] != Prefix+"/dbsc/register" {
		t.Fatalf("registration path %q, want under the gateway's prefix %s", params["path"], Prefix)
	}
	r := httptest.NewRequest("POST", params["path"], nil)
	r.Header.Set("Cookie", "lapse="+tok)
	r.Header.Set(dbsc.HeaderResponse, dbsctest.NewES256().Registration(params["challenge"], ""))
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("registration through the gateway: %d %s", w.Code, w.Body)
	}
	var bound string
	for _, c := range w.Result().Cookies() {
		if c.Name == "lapse-bound" {
			bound = c.Value
		}
	}
	if bound == "" {
		t.Fatalf("no lapse-bound cookie in %v", w.Header())
	}
	if w := f.ask("/v1/auth-request", "/docs", "", "Cookie", "lapse="+tok+"; lapse-bound="+bound); w.Code != 200 {
		t.Errorf("with the bound cookie: %d %s, want 200", w.Code, w.Body)
	}
	clock.Advance(lapse.BoundCookieSlack) // past the moments just after the binding
	if w := f.ask("/v1/auth-request", "/docs", tok); w.Code != http.StatusUnauthorized {
		t.Errorf("the session cookie alone: %d %s, want 401", w.Code, w.Body)
	}
	clock.Advance(lapse.DefaultBoundCookieLifetime)
	if w := f.ask("/v1/auth-request", "/docs", "", "Cookie", "lapse="+tok+"; lapse-bound="+bound); w.Code != http.StatusUnauthorized {
		t.Errorf("the bound cookie past its lifetime: %d %s, want 401", w.Code, w.Body)
	}
}
