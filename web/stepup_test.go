package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/forwardauth"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/totp"
	"github.com/lapsehq/lapse/web"
)

// stepUpFixture is the step-up page as lapse serve mounts it for the
// forward-auth gateway: the session from the gateway's cookie, lapse's
// TOTP as the factor.
type stepUpFixture struct {
	m     *lapse.Manager
	clock *lapsetest.Clock
	svc   *totp.Service
	page  http.Handler
}

func newStepUpFixture(t *testing.T) *stepUpFixture {
	t.Helper()
	m, clock, _ := lapsetest.NewManager(t, lapse.Config{})
	svc, err := totp.New(totp.Config{Manager: m, Key: make([]byte, totp.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := forwardauth.New(forwardauth.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.NewPages(web.Config{Manager: m, Session: g.Session, StepUp: g.StepUp, Factors: svc, SignInURL: "/login"})
	if err != nil {
		t.Fatal(err)
	}
	return &stepUpFixture{m: m, clock: clock, svc: svc, page: pages.StepUp()}
}

// signIn starts a session for subject, with a confirmed TOTP factor if
// secret is wanted, and returns its token and the factor's secret.
func (f *stepUpFixture) signIn(t *testing.T, subject string, factor bool) (string, string) {
	t.Helper()
	tok, s, err := f.m.Create(t.Context(), lapse.CreateParams{Subject: subject, AMR: []string{"pwd"}})
	if err != nil {
		t.Fatal(err)
	}
	if !factor {
		return tok.Reveal(), ""
	}
	e, err := f.svc.EnrolTOTP(t.Context(), s, lapse.TOTPParams{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ConfirmTOTP(t.Context(), s, f.code(t, e.Secret)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(totp.Period) // the confirming code's step is spent
	return tok.Reveal(), e.Secret
}

func (f *stepUpFixture) code(t *testing.T, secret string) string {
	t.Helper()
	c, err := pqtotp.GenerateCode(secret, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *stepUpFixture) post(tok string, form url.Values, hdr ...string) (*http.Response, string) {
	r := httptest.NewRequest("POST", "/.lapse/stepup", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	if tok != "" {
		r.AddCookie(&http.Cookie{Name: "lapse", Value: tok})
	}
	return serve(f.page, r)
}

func TestStepUpPage(t *testing.T) {
	t.Run("asks_for_a_code_and_keeps_rd", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, _ := f.signIn(t, "ada", true)
		r := httptest.NewRequest("GET", "/.lapse/stepup?rd=%2Fbilling%2F%3Fx%3D1", nil)
		r.AddCookie(&http.Cookie{Name: "lapse", Value: tok})
		resp, body := serve(f.page, r)
		if resp.StatusCode != 200 || !strings.Contains(body, `name="code"`) || !strings.Contains(body, `value="/billing/?x=1"`) ||
			!strings.Contains(body, `action="/.lapse/stepup"`) {
			t.Fatalf("%d: want the form posting to itself with rd kept:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("a_right_code_steps_up_replaces_the_cookie_and_goes_back", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, secret := f.signIn(t, "ada", true)
		resp, body := f.post(tok, url.Values{"code": {f.code(t, secret)}, "rd": {"/billing/?x=1"}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/billing/?x=1" {
			t.Fatalf("%d Location %q, want 303 to /billing/?x=1: %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		var fresh string
		for _, c := range resp.Cookies() {
			if c.Name == "lapse" {
				fresh = c.Value
			}
		}
		s, err := f.m.Verify(t.Context(), fresh, lapse.VerifyOptions{RequireAAL: 2})
		if err != nil || fresh == tok {
			t.Fatalf("the new cookie: %v (rotated: %v), want an AAL2 session under a new token", err, fresh != tok)
		}
		if s.AAL != 2 || !strings.Contains(strings.Join(s.AMR, " "), lapse.MethodOTP) {
			t.Errorf("AAL %d AMR %v, want 2 with otp", s.AAL, s.AMR)
		}
	})
	t.Run("a_wrong_code_is_422_and_changes_nothing", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, _ := f.signIn(t, "ada", true)
		resp, body := f.post(tok, url.Values{"code": {"000000"}, "rd": {"/billing/"}})
		if resp.StatusCode != 422 || !strings.Contains(body, `role="alert"`) || len(resp.Cookies()) != 0 {
			t.Fatalf("%d, cookies %v: want 422 with the reason and no new cookie", resp.StatusCode, resp.Cookies())
		}
		if _, err := f.m.Verify(t.Context(), tok, lapse.VerifyOptions{RequireAAL: 2}); lapse.ErrorCode(err) != lapse.CodeStepUpRequired {
			t.Errorf("after a wrong code: %v, want step_up_required", err)
		}
	})
	t.Run("rd_to_another_site_goes_home", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, secret := f.signIn(t, "ada", true)
		resp, _ := f.post(tok, url.Values{"code": {f.code(t, secret)}, "rd": {"//evil.example/x"}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
			t.Fatalf("%d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("a_cross_site_post_is_refused", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, secret := f.signIn(t, "ada", true)
		resp, _ := f.post(tok, url.Values{"code": {f.code(t, secret)}}, "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != 403 {
			t.Fatalf("%d, want 403", resp.StatusCode)
		}
	})
	t.Run("without_a_factor_says_so", func(t *testing.T) {
		f := newStepUpFixture(t)
		tok, _ := f.signIn(t, "ada", false)
		r := httptest.NewRequest("GET", "/.lapse/stepup", nil)
		r.AddCookie(&http.Cookie{Name: "lapse", Value: tok})
		resp, body := serve(f.page, r)
		if resp.StatusCode != 200 || strings.Contains(body, `name="code"`) || !strings.Contains(body, "none set up") {
			t.Fatalf("%d: want no form and the explanation:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("without_a_session_is_the_signed_out_page", func(t *testing.T) {
		f := newStepUpFixture(t)
		resp, body := serve(f.page, httptest.NewRequest("GET", "/.lapse/stepup", nil))
		if resp.StatusCode != 401 || !strings.Contains(body, `href="/login"`) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%d %s: want 401 with the sign-in link", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}
