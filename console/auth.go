package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/loopback"
	"github.com/lapsehq/lapse/throttle"
)

// Cookie names. The __Host- prefix makes the browser refuse the cookie
// unless it is Secure, host-only and for the path "/", so a sibling
// subdomain cannot plant or shadow it; without Secure (see
// [Config.DevInsecureCookies]) the prefix must go.
const (
	cookieName       = "__Host-lapse-console"
	devCookieName    = "lapse-console"
	signInCookieName = "__Host-lapse-console-signin"
	devSignInCookie  = "lapse-console-signin"
)

// secure reports whether r gets Secure cookies: always, unless the
// console runs with DevInsecureCookies and r came over plain HTTP to a
// loopback host from a loopback address (the Host header alone is the
// client's to choose).
func (c *Console) secure(r *http.Request) bool {
	return !c.dev || !loopback.PlainRequest(r)
}

func (c *Console) cookieNames(r *http.Request) (session, signIn string) {
	if c.secure(r) {
		return cookieName, signInCookieName
	}
	return devCookieName, devSignInCookie
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	ma := int(maxAge / time.Second)
	if maxAge < 0 {
		ma = -1
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: ma,
		Secure: c.secure(r), HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
}

// errSignedOut is the reason a request has no console session.
type errSignedOut struct{ why string }

func (e errSignedOut) Error() string { return e.why }

// session returns the console session of r's cookie, recording its
// activity (which slides its idle deadline).
func (c *Console) session(r *http.Request) (*access, error) {
	name, _ := c.cookieNames(r)
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return nil, errSignedOut{}
	}
	s, err := c.own.Verify(r.Context(), ck.Value, lapse.VerifyOptions{})
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeSessionExpiredIdle:
		return nil, errSignedOut{"idle"}
	case lapse.CodeSessionExpiredAbsolute:
		return nil, errSignedOut{"absolute"}
	case lapse.CodeSessionRevoked:
		return nil, errSignedOut{"revoked"}
	case lapse.CodeSessionNotFound:
		return nil, errSignedOut{}
	default:
		return nil, err
	}
	// Only sessions the console opened open the console: platform
	// sessions live in other tiers (New refuses a policy with this one).
	who, ok := identityOf(&s)
	if !ok {
		return nil, errSignedOut{}
	}
	if err := c.keyUsable(r.Context(), who); err != nil {
		return nil, err
	}
	return &access{session: &s, who: who, csrf: csrfToken(ck.Value)}, nil
}

// keyUsable ends the console session of a key that was revoked or has
// expired since it signed in (on any node: the keyring reads the store),
// as disabling an operator ends theirs.
func (c *Console) keyUsable(ctx context.Context, who Identity) error {
	id, isKey := strings.CutPrefix(who.Actor, "key:")
	if !isKey || c.ring == nil {
		return nil
	}
	k, err := c.ring.Key(ctx, id)
	switch {
	case lapse.ErrorCode(err) == lapse.CodeKeyNotFound:
		return errSignedOut{"revoked"}
	case err != nil:
		return err
	case !k.Usable(c.m.Clock().Now()):
		return errSignedOut{"revoked"}
	}
	return nil
}

// csrfToken returns the synchronizer token of the console session whose
// token is tok: an HMAC keyed with the session's own secret, so it is
// bound to that session, needs no storage, holds on every node, and
// cannot be computed without the HttpOnly cookie.
func csrfToken(tok string) string {
	mac := hmac.New(sha256.New, []byte(tok))
	mac.Write([]byte("lapse console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func validCSRF(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// toSignIn answers a request without a console session: a store failure
// is an error page; otherwise the browser goes to the sign-in page,
// which brings a GET back to where it was going.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request, err error) {
	var out errSignedOut
	if e, ok := err.(errSignedOut); ok {
		out = e
	} else {
		c.fail(w, r, nil, err)
		return
	}
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != Prefix+"signin" {
		q.Set("next", r.URL.RequestURI())
	}
	if out.why != "" {
		q.Set("ended", out.why)
		name, _ := c.cookieNames(r)
		c.setCookie(w, r, name, "", -1)
	}
	target := Prefix + "signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

type signInView struct {
	base
	Next      string
	Token     string
	Error     string
	Idle, Abs time.Duration
	IdP       *IdP // offers the sign-in at the identity provider
	// Operators says whether the operator form is offered.
	Operators bool
}

var endedNotices = map[string]string{
	"idle":      "You were signed out after a period without activity.",
	"absolute":  "Your console session reached its maximum length; sign in again.",
	"revoked":   "Your console session was revoked.",
	"signedout": "You are signed out.",
}

// signInPage shows the sign-in form, with a fresh double-submit token in
// a cookie and in the form (there is no session yet to bind one to).
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"), Prefix+"sessions")
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.showSignIn(w, r, http.StatusOK, next, "")
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	_, name := c.cookieNames(r)
	tok := randomToken()
	c.setCookie(w, r, name, tok, time.Hour)
	pol := c.own.Policy().Tiers[Tier]
	v := &signInView{base: c.base(r, nil, "Sign in", ""), Next: next, Token: tok, Error: msg,
		Idle: pol.IdleTimeout, Abs: pol.AbsoluteTimeout, IdP: c.idp, Operators: c.ops != nil}
	v.Notice = endedNotices[r.URL.Query().Get("ended")]
	c.render(w, status, "signin", v)
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// signIn checks a sign-in form and opens a console session: the API-key
// form when it sends a key, the operator form (name, password, code)
// otherwise. Both are refused with a 429 while the client's address is
// throttled, before anything typed is looked at.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.PostFormValue("next"), Prefix+"sessions")
	_, name := c.cookieNames(r)
	ck, err := r.Cookie(name)
	if err != nil || !validCSRF(r.PostFormValue("csrf"), ck.Value) {
		c.fail(w, r, nil, errCSRF)
		return
	}
	client := throttle.ClientAddr(r, c.trusted)
	if wait, ok := c.throttle.Allow(client); !ok {
		w.Header().Set("Retry-After", throttle.RetryAfter(wait))
		c.showSignIn(w, r, http.StatusTooManyRequests, next,
			fmt.Sprintf("Too many failed sign-ins came from your address. Try again in %s.", wait.Round(time.Second)))
		return
	}
	if _, isKey := r.PostForm["key"]; isKey || c.ops == nil {
		c.signInKey(w, r, next, client)
		return
	}
	c.signInOperator(w, r, next, client)
}

// signInKey checks an API key with the console scope (the break-glass
// sign-in) and opens a console session for it.
func (c *Console) signInKey(w http.ResponseWriter, r *http.Request, next string, client netip.Addr) {
	key := strings.TrimSpace(r.PostFormValue("key"))
	who, ok := Identity{}, false
	if key != "" {
		who, ok = c.keys(r.Context(), key)
	}
	if !ok {
		if key != "" {
			c.throttle.Fail(client)
			c.record(r, lapse.Event{Type: lapse.EventKeyRejected, Reason: lapse.ReasonInvalidKey, Actor: Actor}, client)
		}
		c.showSignIn(w, r, http.StatusUnauthorized, next, "That is not an API key with the console scope.")
		return
	}
	if err := c.open(w, r, who, lapse.CreateParams{AMR: []string{"apikey"}}, client); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// open starts a console session for who, with the authentication p
// describes (its AAL and AMR), records an [lapse.EventOperatorSignedIn]
// and sets its cookie in place of the sign-in form's. Every way into
// the console goes through it.
func (c *Console) open(w http.ResponseWriter, r *http.Request, who Identity, p lapse.CreateParams, client netip.Addr) error {
	if !who.Role.Valid() || who.Actor == "" {
		return lapse.Errorf(lapse.CodeInvalid, "console: a sign-in without an actor or a valid role")
	}
	meta, err := json.Marshal(who)
	if err != nil {
		return err
	}
	p.Subject, p.Tenant, p.Tier, p.Metadata = SubjectOf(who.Actor), "", Tier, meta
	if p.UserAgent = r.UserAgent(); len(p.UserAgent) > lapse.MaxUserAgentLen || !utf8.ValidString(p.UserAgent) {
		p.UserAgent = ""
	}
	if client.IsValid() {
		p.IP = client.String()
	}
	tok, _, err := c.own.Create(r.Context(), p)
	if err != nil {
		return err
	}
	c.record(r, lapse.Event{Type: lapse.EventOperatorSignedIn, Actor: who.Actor, ActorName: who.Name}, client)
	session, signIn := c.cookieNames(r)
	c.setCookie(w, r, signIn, "", -1)
	c.setCookie(w, r, session, tok.Reveal(), c.absolute)
	return nil
}

// signOut revokes the console session, records an
// [lapse.EventOperatorSignedOut] and clears its cookie.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, a *access) error {
	if _, err := c.own.End(a.own, a.session.ID, lapse.ReasonLogout, lapse.ActorSubject); err != nil {
		return err
	}
	c.record(r, lapse.Event{Type: lapse.EventOperatorSignedOut, Actor: a.who.Actor, ActorName: a.who.Name}, throttle.ClientAddr(r, c.trusted))
	name, _ := c.cookieNames(r)
	c.setCookie(w, r, name, "", -1)
	http.Redirect(w, r, Prefix+"signin?ended=signedout", http.StatusSeeOther)
	return nil
}
