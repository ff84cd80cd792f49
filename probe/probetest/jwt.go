package probetest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// grant is the server-side half of a JSON Web Token session: its refresh token, which
// the App can end, unlike the tokens it signs.
type grant struct {
	id       string // the sid claim of the tokens it signs
	user     string
	auth     time.Time // when the user signed in: no token outlives auth + absolute
	lastUsed time.Time
}

// claims are those of the App's JSON Web Tokens; times are seconds with a fraction.
type claims struct {
	Sub string  `json:"sub"`
	Sid string  `json:"sid"`
	Jti string  `json:"jti"`
	Iat float64 `json:"iat"`
	Exp float64 `json:"exp"`
}

func seconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// signJWT gives g a new refresh token and answers with it and a JSON Web Token that
// expires after the idle timeout, and never after the absolute one; a.mu must be held.
func (a *App) signJWT(w http.ResponseWriter, g *grant) {
	now := time.Now()
	g.lastUsed = now
	c := claims{Sub: g.user, Sid: g.id, Jti: a.token(), Iat: seconds(now), Exp: seconds(now.Add(a.idle))}
	c.Exp = min(c.Exp, seconds(g.auth.Add(a.absolute)))
	body, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, a.jwtKey)
	mac.Write([]byte(signed))
	refresh := a.token()
	a.grants[refresh] = g
	reply(w, http.StatusOK, map[string]string{"access_token": signed + "." + enc.EncodeToString(mac.Sum(nil)), "refresh_token": refresh, "token_type": "Bearer"})
}

// verifyJWT returns the claims of a token the App signed that has not expired. It keeps
// no state: a token it signed is good until its exp, whatever happened since.
func (a *App) verifyJWT(tok string) (claims, bool) {
	var c claims
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return c, false
	}
	mac := hmac.New(sha256.New, a.jwtKey)
	mac.Write([]byte(tok[:i]))
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return c, false
	}
	parts := strings.Split(tok[:i], ".")
	if len(parts) != 2 {
		return c, false
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(body, &c) != nil {
		return c, false
	}
	return c, seconds(time.Now()) < c.Exp
}

// jwtLogin answers with a JSON Web Token and a refresh token in JSON.
func (a *App) jwtLogin(w http.ResponseWriter) {
	a.signJWT(w, &grant{id: a.token(), user: Username, auth: time.Now()})
}

func (a *App) jwtRefresh(w http.ResponseWriter, r *http.Request) {
	in := readJSON(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.grants[in["refresh_token"]]
	now := time.Now()
	if g == nil || now.Sub(g.lastUsed) >= a.idle || now.Sub(g.auth) >= a.absolute {
		reply(w, http.StatusUnauthorized, map[string]string{"error": "invalid refresh token"})
		return
	}
	delete(a.grants, in["refresh_token"])
	a.signJWT(w, g)
}

// withJWT serves h only for a valid JSON Web Token in the Authorization header, with the
// refresh token of the same sign-in, if it is still live.
func (a *App) withJWT(h func(http.ResponseWriter, *http.Request, claims, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		c, ok := a.verifyJWT(tok)
		if !ok {
			reply(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		refresh := ""
		for t, g := range a.grants {
			if g.id == c.Sid {
				refresh = t
			}
		}
		h(w, r, c, refresh)
	}
}

func (a *App) jwtMe(w http.ResponseWriter, _ *http.Request, c claims, _ string) {
	reply(w, http.StatusOK, map[string]any{"user": map[string]string{"name": c.Sub}})
}

// jwtLogout ends the refresh token of the sign-in; the token itself lives on.
func (a *App) jwtLogout(w http.ResponseWriter, _ *http.Request, _ claims, refresh string) {
	delete(a.grants, refresh)
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) jwtLogoutAll(w http.ResponseWriter, _ *http.Request, c claims, refresh string) {
	a.endOthers(c.Sub, &state{refresh: refresh})
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) jwtPassword(w http.ResponseWriter, r *http.Request, c claims, refresh string) {
	in := readJSON(r)
	if !a.setPassword(&state{user: c.Sub, refresh: refresh}, in["current"], in["new"]) {
		reply(w, http.StatusForbidden, map[string]string{"error": "wrong current password"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
