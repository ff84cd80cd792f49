package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/lapsehq/lapse"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":     ago,
	"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"reasons": func() map[string]string { return reasonText },
}).ParseFS(templateFS, "templates/*.html"))

// Config configures the end-user [Pages]. Manager and Session are
// required; every other zero value is a documented default.
type Config struct {
	// Manager lists and ends sessions.
	Manager *lapse.Manager
	// Session returns the request's own session, as the app's
	// authentication found it; with the middleware package:
	//
	//	func(r *http.Request) (lapse.Session, bool) { return middleware.Session(r.Context()) }
	//
	// The sessions page answers 401 to a request without one.
	Session func(*http.Request) (lapse.Session, bool)
	// CSRFToken returns the token the page's forms carry in CSRFField,
	// with the middleware package middleware.CSRFToken(r.Context()). The
	// pages check it too, in constant time, before ending anything. nil
	// means the app protects the POSTs some other way (and the forms
	// carry no token).
	CSRFToken func(*http.Request) string
	// CSRFField is the form field of the token; "" means "csrf_token".
	CSRFField string
	// SignOutURL is where the sessions page's "Sign out" of this device
	// posts (with the CSRF token); "" means "/signout".
	SignOutURL string
	// SignInURL is linked from the signed-out page; "" means "/signin".
	SignInURL string
	// AssetsURL is where [Assets] is mounted, for the pages' default
	// stylesheet when there is no Layout; "" means "/lapse/web".
	AssetsURL string
	// Layout, when set, frames every page in the app's own layout: it is
	// executed with a [Frame], and the app's headers decide whether the
	// page may be framed. nil means a minimal page of lapse's own, sent
	// with "Content-Security-Policy: frame-ancestors 'none'" and
	// "X-Frame-Options: DENY".
	Layout *template.Template
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Factors is the second factor the step-up page asks for (package
	// totp); nil leaves [Pages.StepUp] answering 404.
	Factors lapse.FactorService
	// StepUp raises the request's session once the step-up page checked
	// a code, replacing its cookie: the middleware's StepUp, or the
	// forward-auth gateway's. nil leaves [Pages.StepUp] answering 404.
	StepUp func(w http.ResponseWriter, r *http.Request, aal int, amr []string) (*lapse.Session, error)
	// Passkeys runs the passkey ceremonies (package passkey); nil leaves
	// [Pages.Passkeys] answering 404.
	Passkeys lapse.PasskeyService
	// StepUpURL returns the step-up page that comes back to back (a path
	// on this origin) once done; nil means "/stepup?next=" and back.
	StepUpURL func(back string) string
	// Place describes in plain words where an address is, for the
	// sessions page ("Berlin, Germany", from the app's own location
	// database); "" or nil means the page names the address's network
	// ("the network 192.0.2.x"): lapse has no location database.
	Place func(ip string) string
}

// Frame is what a [Config.Layout] is executed with.
type Frame struct {
	// Title is the page's title, such as "Your sessions".
	Title string
	// Content is the page's body, to place inside the layout's <main>.
	Content template.HTML
	// Request is the request being answered.
	Request *http.Request
}

// Pages serves the end-user pages. It is safe for concurrent use.
type Pages struct {
	cfg Config
	log *slog.Logger
}

// NewPages returns the pages for cfg. It fails if Manager or Session is
// missing.
func NewPages(cfg Config) (*Pages, error) {
	if cfg.Manager == nil || cfg.Session == nil {
		return nil, errors.New("web: Config.Manager and Config.Session are required")
	}
	if cfg.CSRFField == "" {
		cfg.CSRFField = "csrf_token"
	}
	if cfg.SignOutURL == "" {
		cfg.SignOutURL = "/signout"
	}
	if cfg.SignInURL == "" {
		cfg.SignInURL = "/signin"
	}
	if cfg.AssetsURL == "" {
		cfg.AssetsURL = "/lapse/web"
	}
	p := &Pages{cfg: cfg, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// sessionRow is one session on the sessions page, a card.
type sessionRow struct {
	Now        time.Time
	ID         string
	Device     Device
	IP         string
	Created    time.Time
	LastActive time.Time
	Tier       string
	AAL        int
	// Bound says the session is bound to its device's key (DBSC): its
	// cookies are worthless on another machine.
	Bound   bool
	Current bool
	// Place is where the session was signed in from, in plain words.
	Place string
	// NewDevice marks a session signed in from a device new to the user.
	NewDevice bool
	// Changes says, in plain words, how the session's browser or
	// network changed since it was signed in; empty if it did not.
	Changes []string
}

type sessionsPage struct {
	Current    sessionRow
	Others     []sessionRow
	Notice     string
	CSRFField  string
	CSRFToken  string
	SignOutURL string
	Action     string
}

// Sessions returns the "Your sessions" page: GET lists the user's
// active sessions in the current session's tenant, newest first, each
// with its device, IP address, sign-in and last-activity times and tier,
// the current one marked "This device"; POST with action=end and id ends
// one of them, POST with action=end_others ends every other one ("sign
// out everywhere else"). Both POSTs check the CSRF token and answer with
// a redirect back to the page (303). A session that is not the user's
// own is answered 404, like one that does not exist.
//
// Ending one session records reason logout and ending the others
// logout_all, both with actor "subject". The page records no activity
// of its own: the middleware in front of it does.
func (p *Pages) Sessions() http.Handler {
	return p.ownPage("your sessions", p.listSessions, p.endSessions)
}

// ownPage is a page of the user's own: GET and HEAD shown by get, POST
// done by post, each with the request's session; 401 without one.
func (p *Pages) ownPage(what string, get, post func(http.ResponseWriter, *http.Request, lapse.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur, ok := p.cfg.Session(r)
		if !ok {
			http.Error(w, "Sign in to see "+what+".", http.StatusUnauthorized)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			get(w, r, cur)
		case http.MethodPost:
			post(w, r, cur)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

func (p *Pages) rowOf(s *lapse.Session, current string, now time.Time, sig map[string]*lapse.SessionSignals) sessionRow {
	row := sessionRow{
		Now: now, ID: s.ID, Device: ParseUserAgent(s.UserAgent), IP: s.IP, Created: s.CreatedAt,
		LastActive: s.LastActiveAt, Tier: s.Tier, AAL: s.AAL, Current: s.ID == current, Place: p.place(s.IP),
	}
	if g := sig[s.ID]; g != nil {
		row.NewDevice = g.NewDevice
		for _, r := range g.Reasons {
			row.Changes = append(row.Changes, changeText[r])
		}
		if g.TokenReused {
			row.Changes = append(row.Changes, "an old sign-in of this session was used again")
		}
	}
	return row
}

// changeText says each kind of client change in plain words.
var changeText = map[lapse.Reason]string{
	lapse.ReasonNetworkChanged:  "used from another network",
	lapse.ReasonBrowserChanged:  "used from another browser",
	lapse.ReasonPlatformChanged: "used from another kind of device",
}

// place describes where ip is: Config.Place's words, or its network.
func (p *Pages) place(ip string) string {
	if p.cfg.Place != nil {
		if s := p.cfg.Place(ip); s != "" {
			return s
		}
	}
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return "an unknown place"
	case a.Unmap().Is4():
		b := a.Unmap().As4()
		return fmt.Sprintf("the network %d.%d.%d.x", b[0], b[1], b[2])
	}
	pfx, _ := a.Prefix(48)
	return "the network " + pfx.String()
}

func (p *Pages) listSessions(w http.ResponseWriter, r *http.Request, cur lapse.Session) {
	all, err := p.cfg.Manager.Sessions(r.Context(), lapse.Filter{Subject: cur.Subject, Tenant: cur.Tenant})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.cfg.Manager.Clock().Now()
	since := cur.CreatedAt
	for _, s := range all {
		if s.CreatedAt.Before(since) {
			since = s.CreatedAt
		}
	}
	sig, err := p.cfg.Manager.Signals(r.Context(), cur.Subject, since)
	if err != nil {
		p.log.ErrorContext(r.Context(), "reading the sessions' signals", "err", err) // the list still helps
	}
	page := sessionsPage{
		Current: p.rowOf(&cur, cur.ID, now, sig), CSRFField: p.cfg.CSRFField,
		SignOutURL: p.cfg.SignOutURL, Action: r.URL.Path,
	}
	if p.cfg.CSRFToken != nil {
		page.CSRFToken = p.cfg.CSRFToken(r)
	}
	ids := []string{cur.ID}
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	bound, err := p.cfg.Manager.DeviceBound(r.Context(), ids)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	page.Current.Bound = bound[cur.ID]
	for _, s := range all {
		row := p.rowOf(s, cur.ID, now, sig)
		row.Bound = bound[s.ID]
		if s.ID == cur.ID {
			page.Current = row // the store's view: last activity as recorded
			continue
		}
		page.Others = append(page.Others, row)
	}
	q := r.URL.Query()
	switch q.Get("done") {
	case "ended":
		page.Notice = "The session was ended. That device is signed out."
	case "ended_others":
		n, _ := strconv.Atoi(q.Get("n"))
		page.Notice = fmt.Sprintf("Signed out everywhere else: %d %s ended.", n, plural(n, "session", "sessions"))
	}
	p.render(w, r, "Your sessions", "sessions", page)
}

// csrfOK checks a POST's CSRF token, in constant time, and answers 403
// if it is wrong.
func (p *Pages) csrfOK(w http.ResponseWriter, r *http.Request) bool {
	if p.cfg.CSRFToken == nil {
		return true
	}
	want, got := p.cfg.CSRFToken(r), r.PostFormValue(p.cfg.CSRFField)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		http.Error(w, "This form has expired: reload the page and try again.", http.StatusForbidden)
		return false
	}
	return true
}

func (p *Pages) endSessions(w http.ResponseWriter, r *http.Request, cur lapse.Session) {
	if !p.csrfOK(w, r) {
		return
	}
	back := url.URL{Path: r.URL.Path}
	switch r.PostFormValue("action") {
	case "end":
		id := r.PostFormValue("id")
		s, err := p.cfg.Manager.Session(r.Context(), id)
		if lapse.ErrorCode(err) == lapse.CodeSessionNotFound || (err == nil && (s.Subject != cur.Subject || s.Tenant != cur.Tenant)) {
			http.Error(w, "No such session.", http.StatusNotFound)
			return
		} else if err != nil {
			p.fail(w, r, err)
			return
		}
		if _, err := p.cfg.Manager.End(r.Context(), id, lapse.ReasonLogout, lapse.ActorSubject); err != nil {
			p.fail(w, r, err)
			return
		}
		back.RawQuery = "done=ended"
	case "end_others":
		n, err := p.cfg.Manager.EndMatching(r.Context(), lapse.Filter{Subject: cur.Subject, Tenant: cur.Tenant, Except: cur.ID}, lapse.ReasonLogoutAll, lapse.ActorSubject)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		back.RawQuery = url.Values{"done": {"ended_others"}, "n": {strconv.Itoa(n)}}.Encode()
	default:
		http.Error(w, "Unknown action.", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// reasonText explains each sign-out reason to the user.
var reasonText = map[string]string{
	"idle_timeout":          "You were signed out because you were not active for a while. This protects your account if you step away.",
	"absolute_timeout":      "Your session reached its time limit, so you were signed out. Sign in again to carry on.",
	"logout":                "Your session on this site has ended. Sign in again to carry on.",
	"logout_all":            "You were signed out from another device, with “sign out everywhere else”.",
	"admin":                 "An administrator ended your session.",
	"password_change":       "Your password or your second factor was changed, so your sessions were ended.",
	"theft":                 "You were signed out because this session was used from another device. Sign in again; if you did not expect this, change your password.",
	"limit":                 "You signed in on more devices than allowed, so this, the oldest session, was ended.",
	"idp_logout":            "You were signed out at your organisation's sign-in service (your identity provider), so your session here ended too.",
	"revoked":               "Your session was ended.",
	"device_unbound":        "This part of the site needs a browser that binds your session to this device (such as Chrome on a computer). Sign in again with one.",
	"device_proof_required": "Your browser could not prove that it is the device you signed in on, so you were signed out. Sign in again.",
	"signed_out":            "Your session on this site has ended. Sign in again to carry on.",
}

type signedOutPage struct {
	Reason    string
	Message   string
	SignInURL string
}

// SignedOut returns the page the browser client and the middleware send
// a user to when their session ends: it explains ?reason= (idle_timeout,
// absolute_timeout, logout, logout_all, admin, password_change, theft,
// idp_logout, limit, revoked, and the device binding's device_unbound and
// device_proof_required) in plain words and links to sign-in. It needs no
// session.
func (p *Pages) SignedOut() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := r.URL.Query().Get("reason")
		msg, ok := reasonText[reason]
		if !ok {
			reason, msg = "signed_out", reasonText["signed_out"]
		}
		p.render(w, r, "Signed out", "signedout", signedOutPage{Reason: reason, Message: msg, SignInURL: p.cfg.SignInURL})
	})
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, title, name string, data any) {
	p.renderStatus(w, r, http.StatusOK, title, name, data)
}

func (p *Pages) renderStatus(w http.ResponseWriter, r *http.Request, status int, title, name string, data any) {
	var body bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&body, name, data); err != nil {
		p.fail(w, r, err)
		return
	}
	var out bytes.Buffer
	frame := Frame{Title: title, Content: template.HTML(body.String()), Request: r}
	var err error
	if p.cfg.Layout != nil {
		err = p.cfg.Layout.Execute(&out, frame)
	} else {
		err = pageTemplates.ExecuteTemplate(&out, "page", struct {
			Frame
			AssetsURL string
		}{frame, p.cfg.AssetsURL})
	}
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if p.cfg.Layout == nil {
		// A page of lapse's own is never to be framed: framed and made
		// invisible, "Sign out everywhere else" could be clicked by a
		// user who meant to click something else (clickjacking). The
		// CSP is added beside any the app sets, so it tightens theirs
		// and loosens nothing; in an app's layout, framing is the app's
		// to decide.
		w.Header().Add("Content-Security-Policy", "frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(out.Bytes())
}

func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "code", lapse.ErrorCode(err), "err", err)
	status := http.StatusInternalServerError
	if lapse.ErrorCode(err) == lapse.CodeStoreUnavailable {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, "Something went wrong; try again in a moment.", status)
}

// ago says how long before now t was, in words.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		n := int(d / time.Minute)
		return fmt.Sprintf("%d %s ago", n, plural(n, "minute", "minutes"))
	case d < 48*time.Hour:
		n := int(d / time.Hour)
		return fmt.Sprintf("%d %s ago", n, plural(n, "hour", "hours"))
	}
	n := int(d / (24 * time.Hour))
	return fmt.Sprintf("%d days ago", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
