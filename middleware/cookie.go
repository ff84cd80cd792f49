package middleware

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/loopback"
)

// ErrInsecureCookie is returned by [Middleware.Login] and
// [Middleware.StepUp] when InsecureDevCookie is set and the request is
// not plain HTTP to a loopback host: the session is not started (or is
// left as it was) rather than sent in a cookie without Secure.
var ErrInsecureCookie = errors.New("middleware: InsecureDevCookie only works over plain HTTP to localhost or a loopback address")

// Login starts a session for a subject the app has just authenticated
// (checked the password, the passkey...) and sets its cookie: a new
// token, so a token planted in the browser before sign-in (session
// fixation) is worth nothing after it. A session the request's cookie
// still held is ended first, as a logout. p.IP and p.UserAgent are
// filled from the request when empty.
//
// It fails with [ErrInsecureCookie] or with the errors of
// [lapse.Manager.Create] ([lapse.CodeInvalid], [lapse.CodeUnknownTier],
// [lapse.CodeUnknownTenant], store errors); the response is then left
// untouched.
func (mw *Middleware) Login(w http.ResponseWriter, r *http.Request, p lapse.CreateParams) (*lapse.Session, error) {
	if err := mw.cookieAllowed(r); err != nil {
		return nil, err
	}
	if p.IP == "" {
		p.IP = mw.clientIP(r)
	}
	if p.UserAgent == "" {
		p.UserAgent = truncateUTF8(strings.ToValidUTF8(r.UserAgent(), ""), lapse.MaxUserAgentLen)
	}
	if old := mw.token(r); old != "" {
		if err := mw.m.Revoke(r.Context(), old); err != nil {
			mw.log.ErrorContext(r.Context(), "ending the previous session at login", "err", err)
		}
	}
	tok, s, err := mw.m.Create(r.Context(), p)
	if err != nil {
		return nil, err
	}
	mw.setCookie(w, tok, s)
	if mw.dev != nil {
		if err := mw.dev.Offer(w, r, s); err != nil {
			// The session works unbound meanwhile; a tier that requires
			// binding refuses it after its grace.
			mw.log.ErrorContext(r.Context(), "offering device binding", "err", err)
		}
	}
	return s, nil
}

// StepUp records that the app has just verified a further factor (a
// one-time code, a passkey) for the request's session: the session is
// raised to assurance level aal with methods amr and its cookie is
// replaced by the new token, which all tabs share. The old token keeps
// working for [lapse.RotateGrace], so requests other tabs already sent
// do not fail.
//
// It fails with [ErrInsecureCookie], with [lapse.CodeSessionNotFound]
// when the request has no session cookie, and otherwise like
// [lapse.Manager.StepUp].
func (mw *Middleware) StepUp(w http.ResponseWriter, r *http.Request, aal int, amr []string) (*lapse.Session, error) {
	if err := mw.cookieAllowed(r); err != nil {
		return nil, err
	}
	old := mw.token(r)
	if old == "" {
		return nil, lapse.Errorf(lapse.CodeSessionNotFound, "sign in first")
	}
	tok, s, err := mw.m.StepUp(lapse.WithClient(r.Context(), mw.client(r)), old, aal, amr, lapse.ActorSubject)
	if err != nil {
		return nil, err
	}
	mw.setCookie(w, tok, s)
	return s, nil
}

// Logout ends the request's session, if it has one, and clears the
// cookie. Like [lapse.Manager.Revoke] it succeeds for a session that is
// already gone, so a user is never left signed in; it fails only when
// the store cannot record the logout (the cookie is cleared even then).
// Wrap the route with [Middleware.SameOrigin].
func (mw *Middleware) Logout(w http.ResponseWriter, r *http.Request) error {
	mw.clearCookie(w)
	if mw.dev != nil {
		mw.dev.Clear(w)
	}
	if tok := mw.token(r); tok != "" {
		return mw.m.Revoke(r.Context(), tok)
	}
	return nil
}

func (mw *Middleware) setCookie(w http.ResponseWriter, tok lapse.Token, s *lapse.Session) {
	c := &http.Cookie{
		Name: mw.cookie, Value: tok.Reveal(), Path: "/",
		Secure: !mw.insecure, HttpOnly: true, SameSite: mw.sameSite,
	}
	if mw.persist {
		c.Expires = s.ExpiresAt
		c.MaxAge = max(int(s.ExpiresAt.Sub(mw.m.Clock().Now()).Seconds()), 1)
	}
	http.SetCookie(w, c)
}

// clearCookie tells the browser to drop the session cookie. Browsers
// match the deletion on name, path and (for prefixed names) Secure, so
// it repeats the attributes the cookie was set with.
func (mw *Middleware) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: mw.cookie, Value: "", Path: "/", MaxAge: -1,
		Secure: !mw.insecure, HttpOnly: true, SameSite: mw.sameSite,
	})
}

// cookieAllowed refuses to send a cookie without Secure anywhere but
// plain HTTP on loopback, from a loopback address (the Host header alone
// is the client's to choose).
func (mw *Middleware) cookieAllowed(r *http.Request) error {
	if !mw.insecure {
		return nil
	}
	if !loopback.PlainRequest(r) {
		return ErrInsecureCookie
	}
	return nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
