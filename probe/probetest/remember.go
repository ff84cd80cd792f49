package probetest

import (
	"crypto/subtle"
	"net/http"
	"time"
)

// The remember-me cookies: a series that names the pair and a token that proves it.
const (
	seriesCookie = "__Host-remember-series"
	tokenCookie  = "__Host-remember-token"
)

// remember is a remember-me pair: it signs a browser back in, through GET /remember-me,
// until its deadline.
type remember struct {
	token    string
	user     string
	created  time.Time // when the user signed in with their password
	deadline time.Time
}

// remember issues a remember-me pair for s, which lasts until s's absolute timeout, or a
// week with RememberMeOutlivesAbsolute; a.mu must be held.
func (a *App) remember(w http.ResponseWriter, s *state) {
	now := time.Now()
	life := a.absolute
	if a.flaw == RememberMeOutlivesAbsolute {
		life = 7 * 24 * time.Hour
	}
	r := &remember{token: a.token(), user: s.user, created: now, deadline: now.Add(life)}
	s.series = a.token()
	a.remembered[s.series] = r
	maxAge := int(life.Round(time.Second) / time.Second)
	for name, v := range map[string]string{seriesCookie: s.series, tokenCookie: r.token} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// forget clears the remember-me cookies in the browser.
func forget(w http.ResponseWriter) {
	for _, name := range []string{seriesCookie, tokenCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
}

// rememberMe signs the browser back in with its remember-me pair: a new session that, in
// a sound App, ends when the first sign-in's would have; then it sends the browser on.
func (a *App) rememberMe(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	series, err1 := r.Cookie(seriesCookie)
	tok, err2 := r.Cookie(tokenCookie)
	var rm *remember
	if err1 == nil && err2 == nil {
		rm = a.remembered[series.Value]
	}
	now := time.Now()
	if rm == nil || subtle.ConstantTimeCompare([]byte(rm.token), []byte(tok.Value)) != 1 || !now.Before(rm.deadline) {
		forget(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s := a.newState("", rm.user)
	s.series = series.Value
	if a.flaw != RememberMeOutlivesAbsolute {
		s.created = rm.created
	}
	a.setCookie(w, s.id)
	to := r.URL.Query().Get("to")
	if to != "/account" {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
