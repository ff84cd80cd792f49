package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/dbsc/dbsctest"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/middleware"
)

// TestDeviceBinding: Login offers binding in a tier that binds, the
// device routes bind the session, and a page then needs the bound cookie;
// without it the browser is sent to the signed-out page with the reason.
func TestDeviceBinding(t *testing.T) {
	p := lapsetest.Policy()
	std := p.Tiers["standard"]
	std.DeviceBinding, std.OnTheft = lapse.DeviceBindingPreferred, lapse.TheftRecord
	p.Tiers["standard"] = std
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Policy: p})
	if _, err := middleware.New(middleware.Config{Manager: m, DeviceBinding: true, InsecureDevCookie: true}); err == nil {
		t.Errorf("DeviceBinding with InsecureDevCookie was accepted")
	}
	mw, err := middleware.New(middleware.Config{Manager: m, DeviceBinding: true, SignedOutURL: "/signed-out"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(mw.Device().Prefix(), mw.Device().Handler())
	mux.Handle("GET /docs", mw.Page(middleware.Requirement{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))

	w := httptest.NewRecorder()
	if _, err := mw.Login(w, httptest.NewRequest("POST", "https://app.example/signin", nil), lapse.CreateParams{Subject: "alice", AAL: 1}); err != nil {
		t.Fatal(err)
	}
	_, params := dbsctest.Params(w.Header().Get(dbsc.HeaderRegistration))
	if params["challenge"] == "" {
		t.Fatalf("Login sent no %s: %v", dbsc.HeaderRegistration, w.Header())
	}
	session := w.Result().Cookies()[0]
	r := httptest.NewRequest("POST", "https://app.example"+params["path"], nil)
	r.AddCookie(session)
	r.Header.Set(dbsc.HeaderResponse, dbsctest.NewES256().Registration(params["challenge"], ""))
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("registration: %d %s", w.Code, w.Body)
	}
	bound := w.Result().Cookies()[0]

	get := func(cookies ...*http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://app.example/docs", nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	if w := get(session, bound); w.Code != 200 {
		t.Errorf("with the bound cookie: %d, want 200", w.Code)
	}
	clock.Advance(5 * time.Minute)
	w = get(session)
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.Contains(loc, "reason=device_proof_required") {
		t.Errorf("the session cookie alone: %d to %q, want a redirect to the signed-out page with reason device_proof_required", w.Code, loc)
	}
	// The refused request kept nothing alive: a stolen cookie without its
	// bound cookie must not slide the idle deadline.
	if s, err := m.Current(context.Background(), session.Value); err != nil {
		t.Fatal(err)
	} else if !s.LastActiveAt.Before(clock.Now()) {
		t.Errorf("a request without the bound cookie recorded activity (last active %v, now %v)", s.LastActiveAt, clock.Now())
	}
	if w := get(session, bound); w.Code != 200 {
		t.Errorf("with the bound cookie again: %d, want 200", w.Code)
	}
	if s, _ := m.Current(context.Background(), session.Value); !s.LastActiveAt.Equal(clock.Now()) {
		t.Errorf("a request with the bound cookie did not record activity (last active %v, now %v)", s.LastActiveAt, clock.Now())
	}
}
