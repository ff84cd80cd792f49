package oidc_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
)

// FuzzCallback sends the callback any state, code and flow cookie: each
// is refused with 400 and creates no session.
func FuzzCallback(f *testing.F) {
	e := newEnv(f)
	f.Add("abc", "code", "value")
	f.Add("0123456789abcdefXYZ", "", "AAAA")
	f.Add("", "x", "")
	f.Fuzz(func(t *testing.T, state, code, cookie string) {
		req, err := http.NewRequest("GET", e.app.URL+"/.lapse/oidc/callback?"+url.Values{"state": {state}, "code": {code}}.Encode(), nil)
		if err != nil {
			return
		}
		name := state
		if len(name) > 16 {
			name = name[:16]
		}
		if c := (&http.Cookie{Name: "lapse_oidc_" + name, Value: cookie}); c.Valid() == nil {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("state %q cookie %q: %d, want 400", state, cookie, resp.StatusCode)
		}
		for _, h := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(h, "lapse=") {
				t.Errorf("a refused callback set the session cookie: %s", h)
			}
		}
	})
}

// FuzzBackChannelLogout sends any logout_token: each is refused with 400
// and ends no session.
func FuzzBackChannelLogout(f *testing.F) {
	e := newEnv(f)
	c := e.browser()
	e.signIn(c, "alice", "/")
	s := e.session(c)
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LWFsaWNlIn0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		resp, err := http.PostForm(e.app.URL+"/.lapse/oidc/backchannel-logout", url.Values{"logout_token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("logout_token %q: %d, want 400", tok, resp.StatusCode)
		}
		if now, err := e.m.Session(context.Background(), s.ID); err != nil || now.Status != lapse.StatusActive {
			t.Fatalf("logout_token %q ended the session (%v)", tok, err)
		}
	})
}
