package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/lapsehq/lapse"
)

// sameOrigin reports whether a request to end the session comes from the
// app's own pages (or the address bar), as fetch metadata or Origin say:
// a page of another site cannot sign the user out.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
		o := r.Header.Get("Origin")
		if o == "" {
			return r.Method == http.MethodGet
		}
		u, err := url.Parse(o)
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		return err == nil && u.Host == host
	}
	return false
}

// logout ends the session of the request's cookie (reason logout), clears
// the cookies and, with EndSession, sends the browser to the provider's
// end_session_endpoint with id_token_hint and post_logout_redirect_uri
// (RP-initiated logout); otherwise to the signed-out page.
func (rp *RP) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !sameOrigin(r) {
		rp.page(w, http.StatusForbidden, "Sign out from the application's own page.", "/")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	sec := rp.secure(r)
	var ended string
	if c, err := r.Cookie(rp.cookie); err == nil && c.Value != "" {
		if s, err := rp.m.Current(r.Context(), c.Value); err == nil {
			ended = s.ID
		}
		if err := rp.m.Revoke(r.Context(), c.Value); err != nil {
			rp.log.ErrorContext(r.Context(), "oidc: logout could not end the session", "err", err)
			rp.page(w, http.StatusServiceUnavailable, "You could not be signed out: the session store did not answer. Try again.", "/")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: rp.cookie, Path: "/", MaxAge: -1, Secure: sec, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: rp.hintCookie(), Path: Prefix + "/", MaxAge: -1, Secure: sec, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, rp.afterLogout(r, ended), http.StatusSeeOther)
}

// afterLogout returns where the browser goes once the session ended: the
// provider's end_session_endpoint when configured and known, with the ID
// token hint of the session that ended (never of another), else lapse's
// signed-out page.
func (rp *RP) afterLogout(r *http.Request, ended string) string {
	local := rp.cfg.SignedOutURL + "?reason=logout"
	if !rp.cfg.EndSession {
		return local
	}
	p, err := rp.discover(r.Context())
	if err != nil || p.endSession == "" {
		return local
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return local
	}
	q := u.Query()
	q.Set("client_id", rp.cfg.ClientID)
	q.Set("post_logout_redirect_uri", rp.postOut)
	var h hint
	if c, err := r.Cookie(rp.hintCookie()); err == nil && rp.seal.open(c.Name, c.Value, &h) == nil && ended != "" && h.Session == ended {
		q.Set("id_token_hint", h.IDToken)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Limits on a logout token: its size, and how far its iat may be from
// lapse's clock.
const (
	maxLogoutToken   = 16 << 10
	logoutTokenAge   = 10 * time.Minute
	logoutTokenAhead = 2 * time.Minute
)

// backChannelLogout is the back-channel logout endpoint (OpenID Connect
// Back-Channel Logout 1.0, section 2.5-2.8): it validates the
// logout_token, uses its jti once on every node, and ends the sessions it
// names. It answers 200, or 400 with a JSON error, never cached.
func (rp *RP) backChannelLogout(w http.ResponseWriter, r *http.Request) {
	rp.backChannel(w, r, rp.m.Store().(lapse.ReplayGuard), rp.m.EndIdP)
}

// backChannel serves a back-channel logout: it validates the
// logout_token, spends its jti in guard, and has end end the sessions of
// the provider's session it names.
func (pt *party) backChannel(w http.ResponseWriter, r *http.Request, guard lapse.ReplayGuard, end func(context.Context, lapse.IdPSession) (int, error)) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutToken+1024)
	q, err := pt.logoutToken(r, guard)
	if err == nil {
		var n int
		n, err = end(r.Context(), q)
		if err == nil {
			pt.log.InfoContext(r.Context(), "oidc: back-channel logout", "sessions", n, "sid", q.SID != "", "sub", q.Subject != "")
			w.WriteHeader(http.StatusOK)
			return
		}
		pt.log.ErrorContext(r.Context(), "oidc: back-channel logout could not end the sessions", "err", err)
		backChannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store failed")
		return
	}
	var ref *errRefused
	if errors.As(err, &ref) {
		pt.log.WarnContext(r.Context(), "oidc: refused a back-channel logout", "why", ref.msg, "err", ref.cause)
		backChannelError(w, ref.status, "invalid_request", ref.msg)
		return
	}
	pt.log.ErrorContext(r.Context(), "oidc: back-channel logout failed", "err", err)
	backChannelError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the logout could not be processed")
}

// logoutToken returns the provider session a valid, unused logout_token
// names. The token is verified before its jti is spent, so that a forged
// token cannot spend the jti of a real one.
func (pt *party) logoutToken(r *http.Request, guard lapse.ReplayGuard) (lapse.IdPSession, error) {
	raw := r.PostFormValue("logout_token")
	if raw == "" || len(raw) > maxLogoutToken {
		return lapse.IdPSession{}, refuse(http.StatusBadRequest, "no logout_token", nil)
	}
	p, err := pt.discover(r.Context())
	if err != nil {
		return lapse.IdPSession{}, err
	}
	lt, err := p.verifier.VerifyLogout(pt.ctx(r.Context()), raw)
	if err != nil {
		return lapse.IdPSession{}, refuse(http.StatusBadRequest, "the logout_token is not valid", err)
	}
	var c struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil || !jsonObject(c.Events["http://schemas.openid.net/event/backchannel-logout"]) {
		return lapse.IdPSession{}, refuse(http.StatusBadRequest, "the logout_token's events claim is not a back-channel logout event", err)
	}
	now := pt.clock.Now()
	if lt.IssuedAt.IsZero() || lt.IssuedAt.After(now.Add(logoutTokenAhead)) || lt.IssuedAt.Before(now.Add(-logoutTokenAge)) {
		return lapse.IdPSession{}, refuse(http.StatusBadRequest, "the logout_token's iat is missing or too far from now", nil)
	}
	// Kept until the token expires: past that, go-oidc refuses it anyway.
	h := sha256.Sum256([]byte(pt.issuer + "\x00" + lt.TokenID))
	first, err := guard.FirstUse(r.Context(), "oidc-logout:"+hex.EncodeToString(h[:]), lt.Expiry, now)
	if err != nil {
		return lapse.IdPSession{}, err
	}
	if !first {
		return lapse.IdPSession{}, refuse(http.StatusBadRequest, "the logout_token was used before", nil)
	}
	return lapse.IdPSession{Issuer: pt.issuer, Subject: lt.Subject, SID: lt.SessionID}, nil
}

func jsonObject(b json.RawMessage) bool {
	var m map[string]any
	return len(b) > 0 && json.Unmarshal(b, &m) == nil && m != nil
}

func backChannelError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
