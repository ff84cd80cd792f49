package dbsc_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
	"github.com/lapsehq/lapse/dbsc/dbsctest"
	"github.com/lapsehq/lapse/httpapi"
)

// TestSessionRoutesCheckTheBoundCookie: the browser client's own routes
// (/v1/session/...), authenticated by the session cookie, judge the
// device binding as the app's routes do: a copied cookie jar without the
// bound cookie can neither read the session's state nor keep it alive,
// also by sending its token as a bearer token, while the bound browser
// can.
func TestSessionRoutesCheckTheBoundCookie(t *testing.T) {
	f := newFixture(t)
	api, err := httpapi.New(httpapi.Config{Manager: f.m, Keys: httpapi.NewKeys(), SessionCookie: "lapse", Device: f.b.CheckFunc()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	tok, s, c := f.signIn("record")
	bound := f.register(tok, dbsctest.NewES256(), c)
	f.clock.Advance(lapse.BoundCookieSlack) // past the grace after binding
	bearer := false
	call := func(method, path, boundCookie string) int {
		r := httptest.NewRequest(method, "https://app.example"+path, nil)
		if bearer {
			r.Header.Set("Authorization", "Bearer "+tok.Reveal())
		} else {
			r.AddCookie(&http.Cookie{Name: "lapse", Value: tok.Reveal()})
		}
		if boundCookie != "" {
			r.AddCookie(&http.Cookie{Name: dbsc.DefaultCookieName, Value: boundCookie})
		}
		r.Header.Set(httpapi.CSRFHeader, "1")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	before, _ := f.m.Current(t.Context(), tok.Reveal())
	for _, route := range []struct{ method, path string }{{"GET", "/v1/session"}, {"POST", "/v1/session/extend"}} {
		if got := call(route.method, route.path, ""); got != http.StatusUnauthorized {
			t.Errorf("%s %s with a copied jar (no bound cookie) = %d, want 401 (device proof required)", route.method, route.path, got)
		}
	}
	// The jar's token sent as a bearer token is no way round the check.
	bearer = true
	if got := call("POST", "/v1/session/extend", ""); got != http.StatusUnauthorized {
		t.Errorf("POST /v1/session/extend with the copied token as a bearer token = %d, want 401", got)
	}
	bearer = false
	if after, _ := f.m.Current(t.Context(), tok.Reveal()); !after.IdleExpiresAt.Equal(before.IdleExpiresAt) {
		t.Errorf("the copied jar's extend moved the idle deadline from %v to %v", before.IdleExpiresAt, after.IdleExpiresAt)
	}
	if got := call("GET", "/v1/session", bound); got != http.StatusOK {
		t.Errorf("GET /v1/session from the bound browser = %d, want 200", got)
	}
	if got, _ := f.m.Session(t.Context(), s.ID); got.Status != lapse.StatusActive {
		t.Errorf("status %s, want active: the record tier only records", got.Status)
	}
}
