package probetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request) map[string]string {
	m := map[string]string{}
	json.NewDecoder(r.Body).Decode(&m)
	return m
}

// issue gives s a new access and refresh token and answers with them; a.mu must be held.
func (a *App) issue(w http.ResponseWriter, s *state) {
	delete(a.sessions, s.id)
	delete(a.refresh, s.refresh)
	s.id, s.refresh = a.token(), a.token()
	a.sessions[s.id], a.refresh[s.refresh] = s, s
	reply(w, http.StatusOK, map[string]string{"access_token": s.id, "refresh_token": s.refresh, "token_type": "Bearer"})
}

// jsonLogin serves a JSON sign-in: it refuses a wrong username or password, and else
// answers with signedIn, a.mu held.
func (a *App) jsonLogin(signedIn func(http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := readJSON(r)
		a.mu.Lock()
		defer a.mu.Unlock()
		if in["username"] != Username || in["password"] != a.password {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "wrong username or password"})
			return
		}
		signedIn(w)
	}
}

// apiLogin answers with an access and a refresh token in JSON.
func (a *App) apiLogin(w http.ResponseWriter) {
	a.issue(w, a.newState("", Username))
}

// apiLoginText answers with the bare access token as text.
func (a *App) apiLoginText(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%s\n", a.newState("", Username).id)
}

// apiLoginHeader answers with the access token in the X-Session-Token header and no
// body.
func (a *App) apiLoginHeader(w http.ResponseWriter) {
	w.Header().Set("X-Session-Token", a.newState("", Username).id)
	w.WriteHeader(http.StatusNoContent)
}

// scriptLogin signs in from a form and answers a page whose script keeps the access
// token in the cookie "token", as single-page apps do that cannot set HttpOnly cookies.
func (a *App) scriptLogin(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.PostFormValue("username") != Username || r.PostFormValue("password") != a.password {
		http.Error(w, "wrong username or password", http.StatusUnauthorized)
		return
	}
	fmt.Fprintf(w, `<!DOCTYPE html><title>Signing in</title><script>
document.cookie = "token=%s; Path=/; Secure; SameSite=Strict";
location.replace("/app");
</script>`, a.newState("", Username).id)
}

func (a *App) apiRefresh(w http.ResponseWriter, r *http.Request) {
	in := readJSON(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.refresh[in["refresh_token"]]
	if s == nil || a.live(s.id) == nil {
		reply(w, http.StatusUnauthorized, map[string]string{"error": "invalid refresh token"})
		return
	}
	a.issue(w, s)
}

// accessToken returns the access token a request carries: as a bearer token, in the
// X-Session-Token header or in the cookie "token".
func accessToken(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok
	}
	if tok := r.Header.Get("X-Session-Token"); tok != "" {
		return tok
	}
	if c, err := r.Cookie("token"); err == nil {
		return c.Value
	}
	return ""
}

// withBearer serves h only for a live session named by the request's access token.
func (a *App) withBearer(h func(http.ResponseWriter, *http.Request, *state)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := accessToken(r)
		a.mu.Lock()
		defer a.mu.Unlock()
		s := a.live(tok)
		if tok == "" || s == nil || s.user == "" {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
			return
		}
		h(w, r, s)
	}
}

func (a *App) apiMe(w http.ResponseWriter, _ *http.Request, s *state) {
	reply(w, http.StatusOK, map[string]any{"user": map[string]string{"name": s.user}})
}

func (a *App) apiLogout(w http.ResponseWriter, _ *http.Request, s *state) {
	if a.flaw != LogoutClearsCookieOnly {
		a.end(s)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) apiLogoutAll(w http.ResponseWriter, _ *http.Request, s *state) {
	a.endOthers(s.user, s)
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) apiPassword(w http.ResponseWriter, r *http.Request, s *state) {
	in := readJSON(r)
	if !a.setPassword(s, in["current"], in["new"]) {
		reply(w, http.StatusForbidden, map[string]string{"error": "wrong current password"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
