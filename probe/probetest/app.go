// Package probetest provides small web applications with known session flaws, to test
// [probe.Run] against and to try lapse probe on. Each [App] serves the same pages and
// APIs, in the ways of signing in a [Kind] names; a [Flaw] breaks exactly one thing.
package probetest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Flaw is the one known weakness an [App] has.
type Flaw string

// The flaws an App can have.
const (
	Sound                       Flaw = ""                               // none
	LogoutClearsCookieOnly      Flaw = "logout-clears-cookie-only"      // sign-out deletes the cookie but not the session
	NoIdleTimeout               Flaw = "no-idle-timeout"                // idle sessions live until the absolute timeout
	Fixation                    Flaw = "fixation"                       // adopts any session id and keeps it across sign-in
	WeakCookies                 Flaw = "weak-cookies"                   // no Secure, HttpOnly or SameSite; persists 30 days
	PredictableTokens           Flaw = "predictable-tokens"             // session ids are the clock in hex
	PasswordChangeKeepsSessions Flaw = "password-change-keeps-sessions" // a password change leaves other sessions alive
	RememberMeSurvivesLogout    Flaw = "remember-me-survives-logout"    // sign-out leaves the remember-me pair able to sign back in
	RememberMeOutlivesAbsolute  Flaw = "remember-me-outlives-absolute"  // the remember-me pair lasts a week and starts a fresh session
)

// The account every App knows.
const (
	Username    = "alice"
	Password    = "correct horse battery"
	NewPassword = "staple 2 horses"
)

// App is a small web application over one account with form sign-in (CSRF-protected,
// session cookie, optional remember-me cookies) and JSON APIs (server-side bearer and
// refresh tokens in several carriers; stateless JSON Web Tokens). Its sessions end after
// Idle without a request and after Absolute in any case. It is an http.Handler, safe
// for concurrent use.
type App struct {
	flaw     Flaw
	idle     time.Duration
	absolute time.Duration
	jwtKey   []byte

	mu         sync.Mutex
	password   string
	sessions   map[string]*state    // by cookie value or access token
	refresh    map[string]*state    // by refresh token
	remembered map[string]*remember // by series
	grants     map[string]*grant    // JSON Web Token refresh tokens
	issued     []string
	last       int64 // last predictable token, to keep them distinct
	mux        *http.ServeMux
}

// state is one session.
type state struct {
	id       string
	refresh  string
	user     string // empty before sign-in
	csrf     string
	series   string // the remember-me pair it was signed in with or issued
	created  time.Time
	lastSeen time.Time
}

// NewApp returns an App with the given flaw and timeouts.
func NewApp(flaw Flaw, idle, absolute time.Duration) *App {
	a := &App{flaw: flaw, idle: idle, absolute: absolute, password: Password,
		sessions: map[string]*state{}, refresh: map[string]*state{}, remembered: map[string]*remember{},
		grants: map[string]*grant{}, mux: http.NewServeMux(), jwtKey: make([]byte, 32)}
	rand.Read(a.jwtKey)
	a.routes()
	return a
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	a.mux.ServeHTTP(w, r)
}

// CookieName is the name of the App's session cookie.
func (a *App) CookieName() string {
	if a.flaw == WeakCookies {
		return "sid"
	}
	return "__Host-sid"
}

// Issued returns every session id, access token and refresh token the App handed out.
func (a *App) Issued() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.issued...)
}

// token makes a new secret; a.mu must be held.
func (a *App) token() string {
	var t string
	if a.flaw == PredictableTokens {
		a.last = max(a.last+1, time.Now().UnixNano())
		t = fmt.Sprintf("%x", a.last)
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		t = base64.RawURLEncoding.EncodeToString(b)
	}
	a.issued = append(a.issued, t)
	return t
}

// newState starts a session, under id when not empty; a.mu must be held.
func (a *App) newState(id, user string) *state {
	if id == "" {
		id = a.token()
	}
	now := time.Now()
	s := &state{id: id, user: user, csrf: a.token(), created: now, lastSeen: now}
	a.sessions[id] = s
	return s
}

// live returns the session under id if it has not ended, and marks it used; a.mu must be
// held.
func (a *App) live(id string) *state {
	s := a.sessions[id]
	if s == nil {
		return nil
	}
	now := time.Now()
	idleOver := now.Sub(s.lastSeen) >= a.idle && a.flaw != NoIdleTimeout
	if now.Sub(s.created) >= a.absolute || idleOver {
		a.end(s)
		return nil
	}
	s.lastSeen = now
	return s
}

// end deletes a session; a.mu must be held.
func (a *App) end(s *state) {
	delete(a.sessions, s.id)
	delete(a.refresh, s.refresh)
}

// endOthers ends every session, remember-me pair and JSON Web Token refresh token of
// user but those of keep; a.mu must be held.
func (a *App) endOthers(user string, keep *state) {
	for _, s := range a.sessions {
		if s.user == user && s != keep {
			a.end(s)
		}
	}
	for series, r := range a.remembered {
		if r.user == user && series != keep.series {
			delete(a.remembered, series)
		}
	}
	for tok, g := range a.grants {
		if g.user == user && tok != keep.refresh {
			delete(a.grants, tok)
		}
	}
}
