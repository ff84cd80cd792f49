package demo

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/middleware"
	"github.com/lapsehq/lapse/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows nothing inline: the client's default
// style is a constructed style sheet, which CSP does not govern.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	page := a.mw.Page(middleware.Requirement{})
	// Billing needs a second factor given recently, whatever the tier.
	billing := a.mw.Page(middleware.Requirement{AAL: 2, MaxAuthAge: a.times.AuthAge})
	// The step-up page, and setting up the factor it asks for, need a
	// session but no assurance: not even the tier's, which is what they
	// provide. Enrolling checks that the sign-in is recent itself.
	stepUp := a.mw.Page(middleware.Requirement{StepUp: true})
	// Removing a factor needs a recent step-up with it.
	recentAAL2 := a.mw.Page(middleware.Requirement{AAL: 2, MaxAuthAge: RecentAuth})
	hf := func(f http.HandlerFunc) http.Handler { return f }

	mux.Handle("GET /{$}", a.mw.Optional(hf(a.home)))
	mux.Handle("GET /signin", a.mw.Optional(hf(a.signInPage)))
	mux.Handle("POST /signin", a.mw.SameOrigin(hf(a.signIn)))
	mux.Handle("POST /signout", a.mw.SameOrigin(hf(a.signOut)))
	mux.Handle("GET /signed-out", a.pages.SignedOut())
	mux.Handle("GET /documents", page(hf(a.documents)))
	mux.Handle("GET /documents/{id}", page(hf(a.document)))
	mux.Handle("POST /documents/{id}", page(hf(a.saveDocument)))
	mux.Handle("GET /billing", billing(hf(a.billing)))
	mux.Handle("GET /stepup", stepUp(hf(a.stepUpPage)))
	mux.Handle("POST /stepup", stepUp(hf(a.stepUp)))
	mux.Handle("GET /account/two-step", stepUp(hf(a.twoStepPage)))
	mux.Handle("POST /account/two-step/enrol", stepUp(hf(a.enrol)))
	mux.Handle("POST /account/two-step/confirm", stepUp(hf(a.confirm)))
	mux.Handle("POST /account/two-step/remove", recentAAL2(hf(a.removeFactor)))
	// Passkeys: lapse's page lists them, renames and removes them (the
	// passkey factor asks for a recent step-up itself); lapse-passkey.js
	// adds one through lapse's session routes below.
	mux.Handle("/account/passkeys", stepUp(a.pages.Passkeys()))
	mux.Handle("/account/sessions", page(a.pages.Sessions()))
	mux.Handle("GET /admin", page(hf(a.admin)))
	mux.Handle("POST /admin/revoke", page(hf(a.adminRevoke)))

	// lapse's own routes: the browser client's /lapse/v1/session...
	// (its state, activity reports, "stay signed in", sign-out and event
	// stream, each authenticated by the session cookie and, for a POST,
	// the X-Lapse-CSRF header), the admin API (with the API key), and
	// the client's files.
	api := http.NewServeMux()
	a.api.Register(api)
	mux.Handle("/lapse/", http.StripPrefix("/lapse", api))
	mux.Handle("/lapse/web/", http.StripPrefix("/lapse/web/", web.Assets()))
	mux.Handle("GET /static/", http.FileServerFS(staticFS))
	if d := a.mw.Device(); d != nil {
		// Device binding's registration and refresh (DBSC).
		mux.Handle(d.Prefix(), d.Handler())
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		mux.ServeHTTP(w, r)
	})
}

// --- rendering ---

// chrome is what the layout shows around a page.
type chrome struct {
	SignedIn bool
	User     User
	Session  lapse.Session
	CSRF     string
	// Config is the browser client's options, as JSON.
	Config string
	Policy string
	Path   string
}

// steppedUpKey holds the session as a step-up in the request being
// answered left it, for the page of that same response.
type steppedUpKey struct{}

func (a *App) chrome(r *http.Request) chrome {
	c := chrome{Path: r.URL.Path}
	s, ok := middleware.Session(r.Context())
	if !ok {
		return c
	}
	if up, ok := r.Context().Value(steppedUpKey{}).(lapse.Session); ok {
		s = up
	}
	c.SignedIn, c.Session, c.CSRF = true, s, middleware.CSRFToken(r.Context())
	c.User, _ = userByEmail(s.Subject)
	// The reminder's time comes with the session (remind_at).
	cfg, _ := json.Marshal(map[string]any{
		"endpoint":     "/lapse",
		"signedOutUrl": "/signed-out",
	})
	c.Config = string(cfg)
	c.Policy = fmt.Sprintf("Your %s-tier session ends after %s without activity (with a warning %s before) and after %s in all.",
		s.Tier, words(s.Policy.IdleTimeout), words(s.Policy.WarnBefore), words(s.Policy.AbsoluteTimeout))
	return c
}

func (a *App) templates() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"chrome":    a.chrome,
		"hasPrefix": strings.HasPrefix,
		"words":     words,
		"ago": func(t time.Time) string {
			if d := a.m.Clock().Now().Sub(t); d >= 10*time.Second {
				return words(d.Truncate(time.Second)) + " ago"
			}
			return "just now"
		},
		"device": func(ua string) string { return web.ParseUserAgent(ua).String() },
	}).ParseFS(templateFS, "templates/*.html"))
}

// layout returns the app's layout, which frames the demo's pages and
// lapse's end-user pages alike.
func (a *App) layout() *template.Template {
	return a.tpl.Lookup("layout")
}

// render executes content template name with data inside the layout.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, title, name string, data any) {
	t := a.tpl
	var body, out bytes.Buffer
	err := t.ExecuteTemplate(&body, name, data)
	if err == nil {
		err = t.ExecuteTemplate(&out, "layout", web.Frame{Title: title, Content: template.HTML(body.String()), Request: r})
	}
	if err != nil {
		a.log.Error("render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(out.Bytes())
}

// words writes a duration the way people say it: "2 minutes", "30
// seconds", "1 hour 30 minutes".
func words(d time.Duration) string {
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	var parts []string
	if h := int(d / time.Hour); h > 0 {
		parts = append(parts, unit(h, "hour"))
	}
	if m := int(d % time.Hour / time.Minute); m > 0 {
		parts = append(parts, unit(m, "minute"))
	}
	if s := int(d % time.Minute / time.Second); s > 0 || len(parts) == 0 {
		parts = append(parts, unit(s, "second"))
	}
	return strings.Join(parts, " ")
}

// --- sign-in and sign-out ---

type signInData struct {
	Users []User
	Next  string
	Email string
	Error string
	Times Timeouts
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := middleware.Session(r.Context()); ok {
		http.Redirect(w, r, "/documents", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (a *App) signInPage(w http.ResponseWriter, r *http.Request) {
	next := middleware.LocalPath(r.URL.Query().Get("next"))
	if _, ok := middleware.Session(r.Context()); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "Sign in", "signin", signInData{Users: Users, Next: next, Times: a.times})
}

func (a *App) signIn(w http.ResponseWriter, r *http.Request) {
	email, password := strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	next := middleware.LocalPath(r.PostFormValue("next"))
	u, ok := userByEmail(email)
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(u.Password)) != 1 {
		a.render(w, r, http.StatusUnauthorized, "Sign in", "signin", signInData{
			Users: Users, Next: next, Email: email, Error: "That email and password do not match a demo user.", Times: a.times,
		})
		return
	}
	if _, err := a.mw.Login(w, r, lapse.CreateParams{Subject: u.Email, Tier: u.Tier, AAL: 1, AMR: []string{"pwd"}}); err != nil {
		a.log.Error("sign-in", "err", err)
		http.Error(w, "Could not sign in: "+lapse.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	if next == "/" {
		next = "/documents"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session. With a next, it is "sign in again": the
// sign-in page follows, then next.
func (a *App) signOut(w http.ResponseWriter, r *http.Request) {
	if err := a.mw.Logout(w, r); err != nil {
		a.log.Error("sign-out", "err", err)
		http.Error(w, "Could not sign out; try again.", http.StatusServiceUnavailable)
		return
	}
	if next := r.PostFormValue("next"); next != "" {
		http.Redirect(w, r, "/signin?"+url.Values{"next": {middleware.LocalPath(next)}}.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signed-out?reason=logout", http.StatusSeeOther)
}

// --- the standard area: documents ---

type document struct {
	ID, Title, Summary string
}

var documents = []document{
	{"roadmap", "Roadmap 2026", "What we ship this year, quarter by quarter."},
	{"onboarding", "Onboarding checklist", "Accounts, laptops and the first week of a new colleague."},
	{"retro", "Incident retro: the session that never ended", "How a forgotten tab kept an admin signed in for nine days."},
}

func (a *App) documents(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "Documents", "documents", documents)
}

type documentData struct {
	Doc   document
	Notes string
	Saved bool
	CSRF  string
}

func (a *App) findDocument(w http.ResponseWriter, r *http.Request) (document, string, bool) {
	i := slices.IndexFunc(documents, func(d document) bool { return d.ID == r.PathValue("id") })
	if i < 0 {
		http.NotFound(w, r)
		return document{}, "", false
	}
	s, _ := middleware.Session(r.Context())
	return documents[i], s.Subject + "/" + documents[i].ID, true
}

func (a *App) document(w http.ResponseWriter, r *http.Request) {
	d, key, ok := a.findDocument(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	notes := a.notes[key]
	a.mu.Unlock()
	a.render(w, r, http.StatusOK, d.Title, "document", documentData{Doc: d, Notes: notes, Saved: r.URL.Query().Has("saved"), CSRF: middleware.CSRFToken(r.Context())})
}

func (a *App) saveDocument(w http.ResponseWriter, r *http.Request) {
	d, key, ok := a.findDocument(w, r)
	if !ok {
		return
	}
	notes := r.PostFormValue("notes")
	if len(notes) > 10_000 {
		notes = notes[:10_000]
	}
	a.mu.Lock()
	a.notes[key] = notes
	a.mu.Unlock()
	http.Redirect(w, r, "/documents/"+d.ID+"?saved", http.StatusSeeOther)
}

// --- the sensitive area: billing, behind a step-up ---

type billingData struct {
	Session lapse.Session
	AuthAge time.Duration
}

func (a *App) billing(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	a.render(w, r, http.StatusOK, "Billing", "billing", billingData{Session: s, AuthAge: a.times.AuthAge})
}

type stepUpData struct {
	Next  string
	Error string
	CSRF  string
	AAL   int
	// Passkey: the user has a passkey, offered first; Code: an
	// authenticator app, whose code (or a recovery code) the form takes.
	Passkey, Code bool
}

// stepUpForm is the step-up page's data for s: which factors it offers.
func (a *App) stepUpForm(r *http.Request, s lapse.Session, next, msg string) (stepUpData, error) {
	d := stepUpData{Next: next, Error: msg, CSRF: middleware.CSRFToken(r.Context()), AAL: s.AAL}
	st, err := a.factor.Factors(r.Context(), s.Subject)
	if err != nil {
		return d, err
	}
	d.Passkey = st.Passkeys > 0 && a.keys != nil
	d.Code = st.TOTP != nil && st.TOTP.Confirmed()
	return d, nil
}

// fail answers an error the user cannot fix (a store that does not
// answer, a bug) with 503, and logs it.
func (a *App) fail(w http.ResponseWriter, what string, err error) {
	a.log.Error(what, "err", err)
	http.Error(w, "Something went wrong; try again in a moment.", http.StatusServiceUnavailable)
}

// sentence turns a lapse error message into one for the page.
func sentence(err error) string {
	m := lapse.ErrorMessage(err)
	if m == "" {
		return m
	}
	m = strings.ToUpper(m[:1]) + m[1:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

// twoStepURL is the setup page, coming back to next when done.
func twoStepURL(next string) string {
	if next == "/" || next == "" {
		return "/account/two-step"
	}
	return "/account/two-step?" + url.Values{"next": {next}}.Encode()
}

// stepUpPage offers the user's passkey, and asks for a code of their
// authenticator app, or sends a user who has no factor yet to set one
// up: what the subject has enrolled decides.
func (a *App) stepUpPage(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	next := middleware.LocalPath(r.URL.Query().Get("next"))
	d, err := a.stepUpForm(r, s, next, "")
	if err != nil {
		a.fail(w, "second factor", err)
		return
	}
	if !d.Passkey && !d.Code {
		http.Redirect(w, r, twoStepURL(next), http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "Confirm it’s you", "stepup", d)
}

// stepUp checks a code from the user's authenticator app (or a recovery
// code) and raises the session to AAL2 with a new cookie.
func (a *App) stepUp(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	next := middleware.LocalPath(r.PostFormValue("next"))
	method, err := a.factor.Check(r.Context(), &s, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		status := http.StatusUnprocessableEntity
		switch lapse.ErrorCode(err) {
		case lapse.CodeFactorNotFound:
			http.Redirect(w, r, twoStepURL(next), http.StatusSeeOther)
			return
		case lapse.CodeTooManyAttempts:
			status = http.StatusTooManyRequests
		case lapse.CodeRejected, lapse.CodeReused, lapse.CodeInvalid:
		default:
			a.fail(w, "second factor", err)
			return
		}
		d, ferr := a.stepUpForm(r, s, next, sentence(err))
		if ferr != nil {
			a.fail(w, "second factor", ferr)
			return
		}
		a.render(w, r, status, "Confirm it’s you", "stepup", d)
		return
	}
	aal, amr := lapse.FactorAssurance(&s, method)
	if _, err := a.mw.StepUp(w, r, aal, amr); err != nil {
		if reason := middleware.ReasonOf(err); reason != "" {
			http.Redirect(w, r, "/signed-out?reason="+url.QueryEscape(reason), http.StatusSeeOther)
			return
		}
		a.log.Error("step-up", "err", err)
		http.Error(w, "Could not confirm: "+lapse.ErrorMessage(err), http.StatusConflict)
		return
	}
	if next == "/" {
		next = "/billing"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// --- two-step verification: setting up and removing the factor ---

type twoStepData struct {
	Next  string
	Self  string // this page, with next
	CSRF  string
	Error string
	// Enabled: the user has a confirmed authenticator app, with
	// RecoveryLeft codes; Passkeys: how many passkeys, when the demo
	// offers them (PasskeysOn).
	Enabled      bool
	RecoveryLeft int
	Passkeys     int
	PasskeysOn   bool
	// Recent: the sign-in is recent enough to set a factor up.
	Recent     bool
	RecentAuth time.Duration
	Removed    bool
	// Enrolment, once started: the QR code (a PNG, base64) and the
	// secret, to be confirmed with a first code.
	QR, Secret string
	ConfirmIn  time.Duration
	// Confirming: the code form without the secret (a wrong first code).
	Confirming bool
	// RecoveryCodes, once confirmed: shown this once.
	RecoveryCodes []string
	Ended         int
}

func (a *App) twoStep(r *http.Request, next string) (twoStepData, error) {
	s, _ := middleware.Session(r.Context())
	d := twoStepData{Next: next, Self: twoStepURL(next), CSRF: middleware.CSRFToken(r.Context()), RecentAuth: RecentAuth,
		Recent: a.m.Clock().Now().Before(s.AuthenticatedAt.Add(RecentAuth))}
	st, err := a.factor.Factors(r.Context(), s.Subject)
	if err != nil {
		return d, err
	}
	d.Enabled, d.RecoveryLeft = st.TOTP != nil && st.TOTP.Confirmed(), st.RecoveryCodes
	d.Passkeys, d.PasskeysOn = st.Passkeys, a.keys != nil
	return d, nil
}

func (a *App) renderTwoStep(w http.ResponseWriter, r *http.Request, status int, d twoStepData) {
	a.render(w, r, status, "Two-step verification", "twostep", d)
}

// twoStepPage says whether the user has a second factor, and offers to
// set one up or remove it.
func (a *App) twoStepPage(w http.ResponseWriter, r *http.Request) {
	d, err := a.twoStep(r, middleware.LocalPath(r.URL.Query().Get("next")))
	if err != nil {
		a.fail(w, "factors", err)
		return
	}
	d.Removed = r.URL.Query().Has("removed")
	a.renderTwoStep(w, r, http.StatusOK, d)
}

// enrol starts a TOTP enrolment and shows its QR code and secret. It
// needs a recent sign-in: lapse's TOTP refuses otherwise.
func (a *App) enrol(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	d, err := a.twoStep(r, middleware.LocalPath(r.PostFormValue("next")))
	if err != nil {
		a.fail(w, "factors", err)
		return
	}
	e, err := a.factor.EnrolTOTP(r.Context(), &s, lapse.TOTPParams{Account: s.Subject})
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeStepUpRequired: // the sign-in is no longer recent, or a passkey needs a step-up with it first
		if d.Passkeys > 0 {
			http.Redirect(w, r, "/stepup?"+url.Values{"next": {d.Self}}.Encode(), http.StatusSeeOther)
			return
		}
		d.Recent = false
		a.renderTwoStep(w, r, http.StatusForbidden, d)
		return
	case lapse.CodeConflict: // already set up
		http.Redirect(w, r, twoStepURL(d.Next), http.StatusSeeOther)
		return
	default:
		a.fail(w, "enrol", err)
		return
	}
	d.QR, d.Secret = base64.StdEncoding.EncodeToString(e.QRCode), e.Secret
	d.ConfirmIn = e.ConfirmBy.Sub(a.m.Clock().Now()).Round(time.Minute)
	a.renderTwoStep(w, r, http.StatusOK, d)
}

// confirm checks the first code from the app, shows the recovery codes
// once, and ends the subject's other sessions: a factor changed.
func (a *App) confirm(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	d, err := a.twoStep(r, middleware.LocalPath(r.PostFormValue("next")))
	if err != nil {
		a.fail(w, "factors", err)
		return
	}
	codes, err := a.factor.ConfirmTOTP(r.Context(), &s, strings.TrimSpace(r.PostFormValue("code")))
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeConflict:
		http.Redirect(w, r, twoStepURL(d.Next), http.StatusSeeOther)
		return
	case lapse.CodeFactorNotFound: // lapsed, or never started: start again
		d.Error = sentence(err)
		a.renderTwoStep(w, r, http.StatusUnprocessableEntity, d)
		return
	case lapse.CodeRejected, lapse.CodeReused, lapse.CodeInvalid, lapse.CodeTooManyAttempts:
		d.Error, d.Confirming = sentence(err), true
		a.renderTwoStep(w, r, http.StatusUnprocessableEntity, d)
		return
	default:
		a.fail(w, "confirm", err)
		return
	}
	d.Enabled, d.RecoveryCodes = true, codes
	// The code that confirmed the factor was a second factor given just
	// now: count it as a step-up, so that billing does not ask for
	// another at once. Like every privilege change it rotates the token
	// (a new cookie). The codes are shown even if it fails, as they are
	// not shown again; billing then asks for a code as before.
	aal, amr := lapse.FactorAssurance(&s, lapse.MethodOTP)
	if up, err := a.mw.StepUp(w, r, aal, amr); err != nil {
		a.log.Warn("counting the confirmed factor as a step-up", "err", err)
	} else {
		r = r.WithContext(context.WithValue(r.Context(), steppedUpKey{}, *up))
	}
	if d.Ended, err = a.endOthers(r, s); err != nil {
		a.log.Error("ending the other sessions after a factor change", "err", err)
	}
	a.renderTwoStep(w, r, http.StatusOK, d)
}

// removeFactor removes the TOTP factor and its recovery codes, behind a
// recent AAL2 step-up, and ends the subject's other sessions.
func (a *App) removeFactor(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	err := a.factor.RemoveTOTP(r.Context(), &s)
	switch lapse.ErrorCode(err) {
	case "":
		if _, err := a.endOthers(r, s); err != nil {
			a.log.Error("ending the other sessions after a factor change", "err", err)
		}
	case lapse.CodeFactorNotFound:
	case lapse.CodeStepUpRequired:
		http.Redirect(w, r, "/stepup?next=%2Faccount%2Ftwo-step", http.StatusSeeOther)
		return
	default:
		a.fail(w, "remove factor", err)
		return
	}
	http.Redirect(w, r, "/account/two-step?removed", http.StatusSeeOther)
}

// endOthers ends every other session of s's subject, in every tenant,
// with reason password_change: its credentials changed (ASVS 5.0 7.4.3).
func (a *App) endOthers(r *http.Request, s lapse.Session) (int, error) {
	return a.m.EndMatching(r.Context(), lapse.Filter{Subject: s.Subject, AnyTenant: true, Except: s.ID}, lapse.ReasonPasswordChange, lapse.ActorSubject)
}

// --- the operator console ---

type adminRow struct {
	User    User
	Session *lapse.Session
	Device  string
}

type adminData struct {
	Rows   []adminRow
	CSRF   string
	Done   bool
	Self   string
	APIKey string
	// BaseURL is the demo's own address, as the browser reached it, for
	// the curl commands; Example is the session they end: another
	// user's, or the operator's own when nobody else is signed in.
	BaseURL string
	Example *adminRow
}

func (a *App) operator(w http.ResponseWriter, r *http.Request) bool {
	s, _ := middleware.Session(r.Context())
	if u, _ := userByEmail(s.Subject); !u.Operator {
		a.render(w, r, http.StatusForbidden, "Operator console", "forbidden", nil)
		return false
	}
	return true
}

func (a *App) admin(w http.ResponseWriter, r *http.Request) {
	if !a.operator(w, r) {
		return
	}
	s, _ := middleware.Session(r.Context())
	data := adminData{CSRF: middleware.CSRFToken(r.Context()), Done: r.URL.Query().Has("revoked"), Self: s.ID, APIKey: a.apiKey,
		BaseURL: "http://" + r.Host} // the demo serves plain HTTP on loopback only
	for _, u := range Users {
		ss, err := a.m.Sessions(r.Context(), lapse.Filter{Subject: u.Email, AnyTenant: true})
		if err != nil {
			a.log.Error("admin list", "err", err)
			http.Error(w, "Could not list sessions.", http.StatusServiceUnavailable)
			return
		}
		for _, s := range ss {
			data.Rows = append(data.Rows, adminRow{User: u, Session: s, Device: web.ParseUserAgent(s.UserAgent).String()})
		}
	}
	for i := range data.Rows {
		if data.Example == nil || data.Example.Session.ID == data.Self {
			data.Example = &data.Rows[i]
		}
	}
	a.render(w, r, http.StatusOK, "Operator console", "admin", data)
}

func (a *App) adminRevoke(w http.ResponseWriter, r *http.Request) {
	if !a.operator(w, r) {
		return
	}
	if _, err := a.m.End(r.Context(), r.PostFormValue("id"), lapse.ReasonAdmin, lapse.ActorAPI); err != nil && lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
		a.log.Error("admin revoke", "err", err)
		http.Error(w, "Could not revoke: "+lapse.ErrorMessage(err), http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/admin?revoked", http.StatusSeeOther)
}
