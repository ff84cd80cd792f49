package demo

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
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
	stepUp := a.mw.Page(middleware.Requirement{StepUp: true})
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
	mux.Handle("/account/sessions", page(a.pages.Sessions()))
	mux.Handle("GET /admin", page(hf(a.admin)))
	mux.Handle("POST /admin/revoke", page(hf(a.adminRevoke)))

	// lapse's own routes: the browser client's /lapse/v1/session... and
	// the admin API (with the API key), and the client's files.
	api := http.NewServeMux()
	a.api.Register(api)
	mux.Handle("/lapse/", http.StripPrefix("/lapse", api))
	mux.Handle("/lapse/web/", http.StripPrefix("/lapse/web/", web.Assets()))
	mux.Handle("GET /static/", http.FileServerFS(staticFS))

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

func (a *App) chrome(r *http.Request) chrome {
	c := chrome{Path: r.URL.Path}
	s, ok := middleware.Session(r.Context())
	if !ok {
		return c
	}
	c.SignedIn, c.Session, c.CSRF = true, s, middleware.CSRFToken(r.Context())
	c.User, _ = userByEmail(s.Subject)
	cfg, _ := json.Marshal(map[string]any{
		"endpoint":           "/lapse",
		"signedOutUrl":       "/signed-out",
		"remindAfterSeconds": s.Policy.RemindAfter.Seconds(),
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

func (a *App) signOut(w http.ResponseWriter, r *http.Request) {
	if err := a.mw.Logout(w, r); err != nil {
		a.log.Error("sign-out", "err", err)
		http.Error(w, "Could not sign out; try again.", http.StatusServiceUnavailable)
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
	Hint  string
	Error string
	CSRF  string
	AAL   int
}

func (a *App) hint() string {
	if h, ok := a.factor.(interface{ Hint() string }); ok {
		return h.Hint()
	}
	return ""
}

func (a *App) stepUpPage(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	a.render(w, r, http.StatusOK, "Confirm it’s you", "stepup", stepUpData{
		Next: middleware.LocalPath(r.URL.Query().Get("next")), Hint: a.hint(), CSRF: middleware.CSRFToken(r.Context()), AAL: s.AAL,
	})
}

// stepUp checks the second factor and raises the session to AAL2. This
// is the hook lapse's TOTP replaces: only a.factor changes.
func (a *App) stepUp(w http.ResponseWriter, r *http.Request) {
	s, _ := middleware.Session(r.Context())
	next := middleware.LocalPath(r.PostFormValue("next"))
	amr, err := a.factor.Check(r.Context(), &s, strings.TrimSpace(r.PostFormValue("code")))
	if code := lapse.ErrorCode(err); code == lapse.CodeInternal || code == lapse.CodeStoreUnavailable {
		a.log.Error("second factor", "err", err)
		http.Error(w, "Could not check the code; try again.", http.StatusServiceUnavailable)
		return
	} else if err != nil {
		a.render(w, r, http.StatusUnprocessableEntity, "Confirm it’s you", "stepup", stepUpData{
			Next: next, Hint: a.hint(), Error: lapse.ErrorMessage(err), CSRF: middleware.CSRFToken(r.Context()), AAL: s.AAL,
		})
		return
	}
	methods := slices.Clone(s.AMR)
	if !slices.Contains(methods, amr) {
		methods = append(methods, amr)
	}
	if _, err := a.mw.StepUp(w, r, max(2, s.AAL), methods); err != nil {
		if code := lapse.ErrorCode(err); code == lapse.CodeSessionExpiredIdle || code == lapse.CodeSessionExpiredAbsolute || code == lapse.CodeSessionRevoked {
			http.Redirect(w, r, "/signed-out?reason="+middleware.ReasonOf(code), http.StatusSeeOther)
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
	data := adminData{CSRF: middleware.CSRFToken(r.Context()), Done: r.URL.Query().Has("revoked"), Self: s.ID, APIKey: a.apiKey}
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
