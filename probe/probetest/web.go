package probetest

import (
	"fmt"
	"html"
	"net/http"
)

func (a *App) routes() {
	a.mux.HandleFunc("GET /login", a.loginPage)
	a.mux.HandleFunc("POST /login", a.login)
	a.mux.HandleFunc("GET /account", a.account)
	a.mux.HandleFunc("POST /logout", a.withForm(a.logout))
	a.mux.HandleFunc("POST /logout-all", a.withForm(a.logoutAll))
	a.mux.HandleFunc("POST /password", a.withForm(a.changePassword))
	a.mux.HandleFunc("POST /api/login", a.jsonLogin(a.apiLogin))
	a.mux.HandleFunc("GET /api/me", a.withBearer(a.apiMe))
	a.mux.HandleFunc("POST /api/refresh", a.apiRefresh)
	a.mux.HandleFunc("POST /api/logout", a.withBearer(a.apiLogout))
	a.mux.HandleFunc("POST /api/logout-all", a.withBearer(a.apiLogoutAll))
	a.mux.HandleFunc("POST /api/password", a.withBearer(a.apiPassword))
	a.mux.HandleFunc("POST /api/login/text", a.jsonLogin(a.apiLoginText))
	a.mux.HandleFunc("POST /api/login/header", a.jsonLogin(a.apiLoginHeader))
	a.mux.HandleFunc("POST /app/login", a.scriptLogin)
	a.mux.HandleFunc("GET /remember-me", a.rememberMe)
	a.mux.HandleFunc("POST /jwt/login", a.jsonLogin(a.jwtLogin))
	a.mux.HandleFunc("POST /jwt/refresh", a.jwtRefresh)
	a.mux.HandleFunc("GET /jwt/me", a.withJWT(a.jwtMe))
	a.mux.HandleFunc("POST /jwt/logout", a.withJWT(a.jwtLogout))
	a.mux.HandleFunc("POST /jwt/logout-all", a.withJWT(a.jwtLogoutAll))
	a.mux.HandleFunc("POST /jwt/password", a.withJWT(a.jwtPassword))
}

func (a *App) setCookie(w http.ResponseWriter, value string) {
	c := &http.Cookie{Name: a.CookieName(), Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if a.flaw == WeakCookies {
		c = &http.Cookie{Name: a.CookieName(), Value: value, Path: "/", MaxAge: 30 * 24 * 3600}
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// current returns the request's live session, with a.mu held; the caller unlocks.
func (a *App) current(r *http.Request) *state {
	a.mu.Lock()
	c, err := r.Cookie(a.CookieName())
	if err != nil {
		return nil
	}
	return a.live(c.Value)
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	defer a.mu.Unlock()
	if s == nil {
		id := ""
		if c, err := r.Cookie(a.CookieName()); err == nil && a.flaw == Fixation {
			id = c.Value // adopt whatever id the browser brings
		}
		s = a.newState(id, "")
		a.setCookie(w, s.id)
	}
	fmt.Fprintf(w, `<form method="post" action="/login"><input type="hidden" name="csrf" value="%s">
<input name="username"><input name="password" type="password"><button>Sign in</button></form>`, html.EscapeString(s.csrf))
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	defer a.mu.Unlock()
	if s == nil || r.PostFormValue("csrf") != s.csrf {
		http.Error(w, "bad or missing CSRF token", http.StatusForbidden)
		return
	}
	if r.PostFormValue("username") != Username || r.PostFormValue("password") != a.password {
		http.Error(w, "wrong username or password", http.StatusUnauthorized)
		return
	}
	if a.flaw == Fixation {
		s.user = Username
	} else {
		a.end(s)
		s = a.newState("", Username)
		a.setCookie(w, s.id)
	}
	if r.PostFormValue("remember") == "1" {
		a.remember(w, s)
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

func (a *App) account(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	defer a.mu.Unlock()
	if s == nil || s.user == "" {
		if _, err := r.Cookie(seriesCookie); err == nil {
			http.Redirect(w, r, "/remember-me?to=/account", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	fmt.Fprintf(w, `<p>Signed in as %s</p><form method="post" action="/logout"><input type="hidden" name="csrf" value="%s"><button>Sign out</button></form>`,
		html.EscapeString(s.user), html.EscapeString(s.csrf))
}

// withForm serves h only for a signed-in session whose form carries its CSRF token.
func (a *App) withForm(h func(http.ResponseWriter, *http.Request, *state)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := a.current(r)
		defer a.mu.Unlock()
		if s == nil || s.user == "" || r.PostFormValue("csrf") != s.csrf {
			http.Error(w, "not signed in, or bad CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

func (a *App) logout(w http.ResponseWriter, r *http.Request, s *state) {
	if a.flaw != LogoutClearsCookieOnly {
		a.end(s)
	}
	if a.flaw != RememberMeSurvivesLogout {
		delete(a.remembered, s.series)
	}
	a.setCookie(w, "")
	forget(w)
	w.Header().Set("Clear-Site-Data", `"cookies", "storage", "cache"`)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (a *App) logoutAll(w http.ResponseWriter, r *http.Request, s *state) {
	a.endOthers(s.user, s)
	http.Redirect(w, r, "/account?signed-out=others", http.StatusSeeOther)
}

// changePassword answers 302 whether it changed the password or not, as many web apps
// do; only the URL it sends the browser to tells.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request, s *state) {
	if !a.setPassword(s, r.PostFormValue("current"), r.PostFormValue("new")) {
		http.Redirect(w, r, "/account?password=unchanged", http.StatusFound)
		return
	}
	http.Redirect(w, r, "/account?password=changed", http.StatusFound)
}

// setPassword changes the password and, unless flawed, ends the user's other sessions;
// a.mu must be held.
func (a *App) setPassword(s *state, current, next string) bool {
	if current != a.password || next == "" {
		return false
	}
	a.password = next
	if a.flaw != PasswordChangeKeepsSessions {
		a.endOthers(s.user, s)
	}
	return true
}
