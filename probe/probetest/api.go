package probetest

import (
	"encoding/json"
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

func (a *App) apiLogin(w http.ResponseWriter, r *http.Request) {
	in := readJSON(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	if in["username"] != Username || in["password"] != a.password {
		reply(w, http.StatusUnauthorized, map[string]string{"error": "wrong username or password"})
		return
	}
	a.issue(w, a.newState("", Username))
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

// withBearer serves h only for a live session named by the Authorization header.
func (a *App) withBearer(h func(http.ResponseWriter, *http.Request, *state)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		defer a.mu.Unlock()
		s := a.live(tok)
		if !ok || s == nil || s.user == "" {
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
