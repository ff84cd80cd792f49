package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/totp"
)

// TestSignInPastTheHashingSlotsIsTurnedAway: with every password-check
// slot taken, an operator sign-in is answered 503 with Retry-After before
// any password is checked: nothing is recorded, no throttle is charged.
func TestSignInPastTheHashingSlotsIsTurnedAway(t *testing.T) {
	m, _, st := lapsetest.NewManager(t, lapse.Config{})
	f, err := totp.New(totp.Config{Manager: m, Key: make([]byte, totp.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Manager: m, Operators: st, Factors: f,
		Keys: func(context.Context, string) (Identity, bool) { return Identity{}, false }})
	if err != nil {
		t.Fatal(err)
	}
	for range cap(c.hashing) {
		c.hashing <- struct{}{}
	}
	form := url.Values{"csrf": {"t"}, "name": {"ada"}, "password": {"correct horse battery staple"}, "code": {"123456"}}
	r := httptest.NewRequest("POST", "https://lapse.example/console/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: signInCookieName, Value: "t"})
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("sign-in with every slot taken = %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if evs, _ := st.QueryEvents(context.Background(), lapse.EventQuery{}); len(evs) != 0 {
		t.Errorf("a turned-away sign-in recorded %+v", evs)
	}
	<-c.hashing
	w = httptest.NewRecorder()
	r = httptest.NewRequest("POST", "https://lapse.example/console/signin", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: signInCookieName, Value: "t"})
	c.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("sign-in with a slot free = %d, want 401 (no such operator)", w.Code)
	}
}
