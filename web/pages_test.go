package web_test

import (
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/web"
)

const (
	firefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"
	safariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
	chromeMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36"
)

type fixture struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	pages *web.Pages
	// current is the session the fake authentication hands the pages.
	current string
}

func newFixture(t *testing.T, layout *template.Template) *fixture {
	t.Helper()
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{})
	f := &fixture{m: m, clock: clock}
	var err error
	f.pages, err = web.NewPages(web.Config{
		Manager: m,
		Session: func(r *http.Request) (lapse.Session, bool) {
			if f.current == "" {
				return lapse.Session{}, false
			}
			s, err := m.Session(r.Context(), f.current)
			return *s, err == nil && s.Status == lapse.StatusActive
		},
		CSRFToken: func(*http.Request) string { return "tok" },
		Layout:    layout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) create(t *testing.T, subject, ua, ip string) *lapse.Session {
	t.Helper()
	_, s, err := f.m.Create(t.Context(), lapse.CreateParams{Subject: subject, UserAgent: ua, IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func serve(h http.Handler, r *http.Request) (*http.Response, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Result(), string(b)
}

func postForm(form url.Values) *http.Request {
	r := httptest.NewRequest("POST", "/account/sessions", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestSessionsPage(t *testing.T) {
	t.Run("lists_own_sessions_with_device_ip_times_tier_and_this_device", func(t *testing.T) {
		f := newFixture(t, nil)
		phone := f.create(t, "ada", safariIPhone, "198.51.100.4")
		f.clock.Advance(20 * time.Minute)
		laptop := f.create(t, "ada", firefoxWindows, "203.0.113.7")
		f.create(t, "bob", firefoxWindows, "192.0.2.1")
		f.current = laptop.ID
		f.clock.Advance(5 * time.Minute)
		resp, body := serve(f.pages.Sessions(), httptest.NewRequest("GET", "/account/sessions", nil))
		if resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
		for _, want := range []string{
			"Firefox 140 on Windows", "203.0.113.7", "This device", "Safari 18 on iOS", "198.51.100.4",
			"25 minutes ago", "5 minutes ago", "standard", `value="tok"`, "Sign out everywhere else", phone.ID,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(body, "192.0.2.1") {
			t.Error("page shows another user's session")
		}
		if i, j := strings.Index(body, laptop.ID), strings.Index(body, phone.ID); i > j {
			t.Error("this device is not listed first")
		}
	})
	t.Run("without_a_session_is_401", func(t *testing.T) {
		f := newFixture(t, nil)
		if resp, _ := serve(f.pages.Sessions(), httptest.NewRequest("GET", "/account/sessions", nil)); resp.StatusCode != 401 {
			t.Errorf("got %d, want 401", resp.StatusCode)
		}
	})
	t.Run("end_one_ends_it_as_logout", func(t *testing.T) {
		f := newFixture(t, nil)
		other := f.create(t, "ada", safariIPhone, "")
		f.current = f.create(t, "ada", firefoxWindows, "").ID
		resp, _ := serve(f.pages.Sessions(), postForm(url.Values{"action": {"end"}, "id": {other.ID}, "csrf_token": {"tok"}}))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/sessions?done=ended" {
			t.Fatalf("got %d to %q, want 303 back to the page", resp.StatusCode, resp.Header.Get("Location"))
		}
		s, _ := f.m.Session(t.Context(), other.ID)
		if s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonLogout {
			t.Errorf("other session %s (%s), want revoked (logout)", s.Status, s.EndReason)
		}
		_, body := serve(f.pages.Sessions(), httptest.NewRequest("GET", "/account/sessions?done=ended", nil))
		if !strings.Contains(body, `role="status"`) || strings.Contains(body, other.ID) {
			t.Error("after ending: no notice, or the ended session still listed")
		}
	})
	t.Run("another_users_session_is_not_found", func(t *testing.T) {
		f := newFixture(t, nil)
		bobs := f.create(t, "bob", "", "")
		f.current = f.create(t, "ada", "", "").ID
		resp, _ := serve(f.pages.Sessions(), postForm(url.Values{"action": {"end"}, "id": {bobs.ID}, "csrf_token": {"tok"}}))
		if s, _ := f.m.Session(t.Context(), bobs.ID); resp.StatusCode != 404 || s.Status != lapse.StatusActive {
			t.Errorf("got %d and bob's session %s; want 404 and it untouched", resp.StatusCode, s.Status)
		}
	})
	t.Run("missing_csrf_token_is_refused", func(t *testing.T) {
		f := newFixture(t, nil)
		other := f.create(t, "ada", "", "")
		f.current = f.create(t, "ada", "", "").ID
		resp, _ := serve(f.pages.Sessions(), postForm(url.Values{"action": {"end"}, "id": {other.ID}}))
		if s, _ := f.m.Session(t.Context(), other.ID); resp.StatusCode != 403 || s.Status != lapse.StatusActive {
			t.Errorf("got %d and the session %s; want 403 and it untouched", resp.StatusCode, s.Status)
		}
	})
	t.Run("sign_out_everywhere_else_keeps_this_device", func(t *testing.T) {
		f := newFixture(t, nil)
		a, b := f.create(t, "ada", "", ""), f.create(t, "ada", "", "")
		bob := f.create(t, "bob", "", "")
		cur := f.create(t, "ada", "", "")
		f.current = cur.ID
		resp, _ := serve(f.pages.Sessions(), postForm(url.Values{"action": {"end_others"}, "csrf_token": {"tok"}}))
		if loc := resp.Header.Get("Location"); loc != "/account/sessions?done=ended_others&n=2" {
			t.Errorf("redirect to %q, want the page with n=2", loc)
		}
		for _, tc := range []struct {
			s    *lapse.Session
			want lapse.Status
		}{{a, lapse.StatusRevoked}, {b, lapse.StatusRevoked}, {bob, lapse.StatusActive}, {cur, lapse.StatusActive}} {
			if s, _ := f.m.Session(t.Context(), tc.s.ID); s.Status != tc.want || (tc.want == lapse.StatusRevoked && s.EndReason != lapse.ReasonLogoutAll) {
				t.Errorf("%s of %s: %s (%s), want %s", tc.s.ID, tc.s.Subject, s.Status, s.EndReason, tc.want)
			}
		}
	})
	t.Run("layout_frames_the_page", func(t *testing.T) {
		layout := template.Must(template.New("l").Parse(`<app-shell title="{{.Title}}">{{.Content}}</app-shell>`))
		f := newFixture(t, layout)
		f.current = f.create(t, "ada", "", "").ID
		_, body := serve(f.pages.Sessions(), httptest.NewRequest("GET", "/account/sessions", nil))
		if !strings.HasPrefix(body, `<app-shell title="Your sessions"><section class="lapse-sessions"`) {
			t.Errorf("page does not start with the layout: %.80s", body)
		}
	})
}

// TestPagesOfTheirOwnRefuseFrames: without an app layout, the pages
// (the sessions page, with its "Sign out everywhere else", above all)
// tell the browser never to frame them, so they cannot be clickjacked;
// with a layout that is the app's to say, and lapse leaves it alone.
func TestPagesOfTheirOwnRefuseFrames(t *testing.T) {
	for _, layout := range []*template.Template{nil, template.Must(template.New("l").Parse(`<main>{{.Content}}</main>`))} {
		f := newFixture(t, layout)
		f.current = f.create(t, "ada", "", "").ID
		for _, h := range []http.Handler{f.pages.Sessions(), f.pages.SignedOut()} {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Security-Policy", "default-src 'self'") // the app's own, set before
			h.ServeHTTP(w, httptest.NewRequest("GET", "/account/sessions", nil))
			csp, xfo := w.Result().Header.Values("Content-Security-Policy"), w.Result().Header.Get("X-Frame-Options")
			if layout == nil && (len(csp) != 2 || csp[0] != "default-src 'self'" || csp[1] != "frame-ancestors 'none'" || xfo != "DENY") {
				t.Errorf("without a layout: CSP %q, X-Frame-Options %q; want the app's CSP kept, frame-ancestors 'none' added, and DENY", csp, xfo)
			}
			if layout != nil && (len(csp) != 1 || xfo != "") {
				t.Errorf("with a layout: CSP %q, X-Frame-Options %q; want the app's headers only", csp, xfo)
			}
		}
	}
}

func TestSignedOutPage(t *testing.T) {
	f := newFixture(t, nil)
	for reason, want := range map[string]string{
		"idle_timeout":     "not active for a while",
		"absolute_timeout": "time limit",
		"admin":            "An administrator ended your session",
		"logout":           "You signed out",
		"<script>":         "You are signed out",
	} {
		_, body := serve(f.pages.SignedOut(), httptest.NewRequest("GET", "/signed-out?reason="+url.QueryEscape(reason), nil))
		if !strings.Contains(body, want) || strings.Contains(body, "<script>") || !strings.Contains(body, `href="/signin"`) {
			t.Errorf("reason %q: page lacks %q or the sign-in link, or echoes the reason", reason, want)
		}
		if n := strings.Count(body, want); n > 1 {
			t.Errorf("reason %q: the page says %q %d times (heading and text repeat each other)", reason, want, n)
		}
	}
}

func TestAssets(t *testing.T) {
	h := http.StripPrefix("/lapse/web/", web.Assets())
	resp, body := serve(h, httptest.NewRequest("GET", "/lapse/web/lapse-client.js", nil))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(body, "export function start") {
		t.Fatalf("got %d %s, want the client as JavaScript", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body != string(web.ClientJS()) {
		t.Error("served client differs from ClientJS")
	}
	r := httptest.NewRequest("GET", "/lapse/web/lapse-client.js", nil)
	r.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if resp, _ := serve(h, r); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: got %d, want 304", resp.StatusCode)
	}
	for _, name := range []string{"lapse-client.d.ts", "lapse-pages.css", "lapse-start.js"} {
		if resp, _ := serve(h, httptest.NewRequest("GET", "/lapse/web/"+name, nil)); resp.StatusCode != 200 {
			t.Errorf("%s: got %d, want 200", name, resp.StatusCode)
		}
	}
	if resp, _ := serve(h, httptest.NewRequest("GET", "/lapse/web/../web.go", nil)); resp.StatusCode != 404 {
		t.Errorf("unknown file: got %d, want 404", resp.StatusCode)
	}
}

func TestSessionsPageMarksSignals(t *testing.T) {
	st := lapsetest.NewStore()
	t.Cleanup(func() { st.Close() })
	pol := &lapse.Policy{DefaultTier: "standard", Tiers: map[string]lapse.Tier{
		"standard": {IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, NewDeviceWindow: 24 * time.Hour}}}
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{Store: st, Policy: pol})
	var current string
	pages, err := web.NewPages(web.Config{Manager: m, Session: func(r *http.Request) (lapse.Session, bool) {
		s, err := m.Session(r.Context(), current)
		return *s, err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(ua, ip string) (lapse.Token, *lapse.Session) {
		tok, s, err := m.Create(t.Context(), lapse.CreateParams{Subject: "ada", UserAgent: ua, IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		return tok, s
	}
	_, laptop := create(firefoxWindows, "203.0.113.7")
	clock.Advance(30 * time.Minute)
	_, again := create(firefoxWindows, "203.0.113.8") // the same laptop: not new
	phoneTok, phone := create(safariIPhone, "198.51.100.4")
	ctx := lapse.WithClient(t.Context(), lapse.Client{IP: netip.MustParseAddr("192.0.2.50"), UserAgent: safariIPhone})
	if _, err := m.Verify(ctx, phoneTok.Reveal(), lapse.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	current = again.ID
	_, body := serve(pages.Sessions(), httptest.NewRequest("GET", "/account/sessions", nil))
	card := func(id string) string {
		i := strings.Index(body, `data-session-id="`+id+`"`)
		if i < 0 {
			t.Fatalf("no card for %s", id)
		}
		j := strings.Index(body[i:], "</li>")
		return body[i : i+j]
	}
	for _, c := range []struct {
		name, id  string
		new, chng bool
		place     string
	}{
		{"first_laptop_session", laptop.ID, true, false, "the network 203.0.113.x"},
		{"same_laptop_again", again.ID, false, false, "the network 203.0.113.x"},
		{"phone_that_moved", phone.ID, true, true, "the network 198.51.100.x"},
	} {
		got := card(c.id)
		if strings.Contains(got, `data-lapse-mark="new-device"`) != c.new || strings.Contains(got, `data-lapse-mark="client-changed"`) != c.chng ||
			!strings.Contains(got, c.place) || c.chng && !strings.Contains(got, "used from another network") {
			t.Errorf("%s: card marks new %v, changed %v, place %q; want %v, %v, %q:\n%s", c.name,
				strings.Contains(got, "new-device"), strings.Contains(got, "client-changed"), c.place, c.new, c.chng, c.place, got)
		}
	}
}

func TestSignedOutPageSaysTheft(t *testing.T) {
	f := newFixture(t, nil)
	_, body := serve(f.pages.SignedOut(), httptest.NewRequest("GET", "/signed-out?reason=theft", nil))
	if !strings.Contains(body, "signed out because this session was used from another device") {
		t.Errorf("signed-out page for theft:\n%s", body)
	}
}
