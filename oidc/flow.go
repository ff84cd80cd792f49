package oidc

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/loopback"
	"github.com/lapsehq/lapse/throttle"
)

var loopbackHost = loopback.Host

// flowTTL is how long a sign-in or step-up may take at the provider.
const flowTTL = 10 * time.Minute

// The kinds of flow.
const (
	kindSignIn = "signin"
	kindStepUp = "stepup"
)

// flow is a sign-in or step-up in flight, kept sealed in a cookie of the
// browser that started it, named after its state.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	RD       string `json:"rd"`
	Kind     string `json:"k"`
	// Session is the id of the session a step-up raises.
	Session string `json:"sid,omitempty"`
	// AAL and MaxAge (seconds) are what a step-up must reach; Login says
	// it asked for a fresh login (prompt=login) since At (Unix seconds).
	AAL    int   `json:"aal,omitempty"`
	MaxAge int64 `json:"max_age,omitempty"`
	Login  bool  `json:"login,omitempty"`
	At     int64 `json:"at"`
}

// flowCookie is the name of the cookie of the flow with state: several
// sign-ins (two tabs) do not overwrite each other's.
func flowCookie(state string) string {
	if len(state) > 16 {
		state = state[:16]
	}
	return "lapse_oidc_" + state
}

// secure reports whether a cookie set in answer to r must be Secure:
// always, except over plain HTTP to a loopback host (development and
// tests), as the proxy forwarded the request.
func (rp *RP) secure(r *http.Request) bool {
	if strings.HasPrefix(rp.cookie, "__Host-") || strings.HasPrefix(rp.cookie, "__Secure-") || r.TLS != nil {
		return true
	}
	if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p != "" && p != "http" {
		return true
	}
	return !loopback.PlainRequest(r)
}

// safeRD returns rd if the browser may be sent there after sign-in: a
// path of this origin, or an absolute URL on an allowed origin; "/"
// otherwise.
func (rp *RP) safeRD(rd string) string {
	if rd == "" || len(rd) > 2048 || strings.ContainsAny(rd, "\r\n\t\\") {
		return "/"
	}
	if strings.HasPrefix(rd, "/") && !strings.HasPrefix(rd, "//") {
		return rd
	}
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" {
		return "/"
	}
	o, err := parseOrigin(u.Scheme + "://" + u.Host)
	if err != nil {
		return "/"
	}
	for _, ok := range rp.origins {
		if o == ok {
			return rd
		}
	}
	return "/"
}

// login sends the browser to the provider to sign in.
func (rp *RP) login(w http.ResponseWriter, r *http.Request) {
	rd := r.URL.Query().Get("rd")
	if safe := rp.safeRD(rd); safe != rd && rd != "" {
		rp.log.WarnContext(r.Context(), "oidc: sign-in with an rd on an origin that is not an app's; going to / after it", "rd", truncate(rd))
		rd = safe
	}
	rp.start(w, r, &flow{Kind: kindSignIn, RD: rp.safeRD(rd)}, nil)
}

// start begins f at the provider: it seals f in a cookie and redirects
// to the authorization endpoint with PKCE, state, nonce and opts.
func (rp *RP) start(w http.ResponseWriter, r *http.Request, f *flow, opts []oauth2.AuthCodeOption) {
	p, err := rp.discover(r.Context())
	if err != nil {
		rp.log.ErrorContext(r.Context(), "oidc: the identity provider cannot be reached", "err", err)
		rp.page(w, http.StatusBadGateway, "The identity provider cannot be reached right now. Try again in a moment.", f.RD)
		return
	}
	f.State, f.Nonce, f.Verifier = lapse.NewID(""), lapse.NewID(""), oauth2.GenerateVerifier()
	f.At = rp.m.Clock().Now().Unix()
	name := flowCookie(f.State)
	v, err := rp.seal.seal(name, f)
	if err != nil {
		rp.page(w, http.StatusInternalServerError, "The sign-in could not start.", f.RD)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: Prefix + "/", MaxAge: int(flowTTL / time.Second),
		Secure: rp.secure(r), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	opts = append(opts, oauth2.S256ChallengeOption(f.Verifier), gooidc.Nonce(f.Nonce))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(f.State, opts...), http.StatusFound)
}

// stepUp sends the browser back to the provider for what the page at rd
// needs: a higher AAL (acr_values), a recent authentication (max_age),
// or else a fresh login (prompt=login).
func (rp *RP) stepUp(w http.ResponseWriter, r *http.Request) {
	rd := rp.safeRD(r.URL.Query().Get("rd"))
	s, ok := rp.session(r)
	if !ok {
		http.Redirect(w, r, Prefix+"/login?rd="+url.QueryEscape(rd), http.StatusFound)
		return
	}
	f := &flow{Kind: kindStepUp, RD: rd, Session: s.ID}
	f.AAL, f.MaxAge = rp.need(r, rd, &s)
	var opts []oauth2.AuthCodeOption
	if acr := rp.cfg.Assurance.acrValues(f.AAL); f.AAL > 1 && len(acr) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(acr, " ")))
	}
	if f.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(f.MaxAge, 10)))
	} else if len(opts) == 0 {
		f.Login = true
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	if !s.IdP.IsZero() && rp.subject == DefaultSubjectClaim {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", s.IdP.Subject))
	}
	rp.start(w, r, f, opts)
}

// need returns the AAL and the maximum authentication age (seconds) the
// page at rd needs of s: its tier's, and the route's where the gateway
// says.
func (rp *RP) need(r *http.Request, rd string, s *lapse.Session) (int, int64) {
	aal, age := s.Policy.RequireAAL, s.Policy.MaxAuthAge
	if rp.cfg.Requirement != nil {
		ra, rage := rp.cfg.Requirement(r, rd)
		aal = max(aal, ra)
		if rage > 0 && (age == 0 || rage < age) {
			age = rage
		}
	}
	secs := int64(age / time.Second)
	if age > 0 && secs == 0 {
		secs = 1
	}
	return max(aal, s.AAL, 1), secs
}

// session returns the session of the request's cookie, if it is valid.
func (rp *RP) session(r *http.Request) (lapse.Session, bool) {
	c, err := r.Cookie(rp.cookie)
	if err != nil || c.Value == "" {
		return lapse.Session{}, false
	}
	s, err := rp.m.Current(r.Context(), c.Value)
	return s, err == nil
}

// errRefused is a sign-in the callback refuses; its message is for the
// user.
type errRefused struct {
	status int
	msg    string
	cause  error
}

func (e *errRefused) Error() string { return e.msg }

func refuse(status int, msg string, cause error) error {
	return &errRefused{status: status, msg: msg, cause: cause}
}

// callback completes a flow: it checks the state against the flow's
// cookie, the provider's answer and its ID token, then signs in or steps
// up.
func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	f, err := rp.flowOf(r, q.Get("state"))
	if err == nil {
		// The flow is spent, whatever comes next.
		http.SetCookie(w, &http.Cookie{Name: flowCookie(f.State), Path: Prefix + "/", MaxAge: -1,
			Secure: rp.secure(r), HttpOnly: true, SameSite: http.SameSiteLaxMode})
		err = rp.complete(w, r, f)
	}
	var ref *errRefused
	if errors.As(err, &ref) {
		rp.log.WarnContext(r.Context(), "oidc: refused a callback", "why", ref.msg, "err", ref.cause)
		rd := "/"
		if f != nil {
			rd = f.RD
		}
		rp.page(w, ref.status, ref.msg, rd)
	} else if err != nil {
		rp.log.ErrorContext(r.Context(), "oidc: callback failed", "err", err)
		rp.page(w, http.StatusInternalServerError, "The sign-in could not be completed.", "/")
	}
}

// flowOf opens the flow whose state the provider sent back, from its
// cookie; the state must be the one the flow was started with.
func (rp *RP) flowOf(r *http.Request, state string) (*flow, error) {
	const restart = "This sign-in link is not valid in this browser, or has expired. Start again."
	if state == "" {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("no state"))
	}
	c, err := r.Cookie(flowCookie(state))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("no flow cookie for this state"))
	}
	var f flow
	if err := rp.seal.open(c.Name, c.Value, &f); err != nil {
		return nil, refuse(http.StatusBadRequest, restart, err)
	}
	if subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("the state differs from the flow's"))
	}
	if now := rp.m.Clock().Now().Unix(); now-f.At > int64(flowTTL/time.Second) || f.At > now+60 {
		return &f, refuse(http.StatusBadRequest, restart, errors.New("the flow expired"))
	}
	return &f, nil
}

// identity is what lapse takes from a verified ID token.
type identity struct {
	raw      string
	subject  string // the lapse subject
	tenant   string
	idp      lapse.IdPSession
	aal      int
	amr      []string
	authTime time.Time // zero when the token has none
}

// complete exchanges the code and acts on the verified identity.
func (rp *RP) complete(w http.ResponseWriter, r *http.Request, f *flow) error {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return refuse(http.StatusUnauthorized, "The identity provider did not sign you in ("+truncate(e)+"). Start again.", errors.New(truncate(q.Get("error_description"))))
	}
	id, err := rp.exchange(r, f, q.Get("code"))
	if err != nil {
		return err
	}
	if f.Kind == kindStepUp {
		return rp.completeStepUp(w, r, f, id)
	}
	return rp.completeSignIn(w, r, f, id)
}

// exchange trades the code for tokens (with the PKCE verifier) and
// verifies the ID token: signature, iss, aud, exp (go-oidc), azp, nonce.
func (rp *RP) exchange(r *http.Request, f *flow, code string) (*identity, error) {
	p, err := rp.discover(r.Context())
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "The identity provider cannot be reached right now. Try again in a moment.", err)
	}
	if code == "" {
		return nil, refuse(http.StatusBadRequest, "The identity provider sent no authorization code. Start again.", nil)
	}
	tok, err := p.oauth.Exchange(rp.ctx(r.Context()), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, refuse(http.StatusBadGateway, "The identity provider did not accept the sign-in. Start again.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refuse(http.StatusBadGateway, "The identity provider sent no ID token.", nil)
	}
	idt, err := p.verifier.Verify(rp.ctx(r.Context()), raw)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be verified. Start again.", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, refuse(http.StatusUnauthorized, "The identity provider's answer was not for this sign-in. Start again.", errors.New("nonce mismatch"))
	}
	id, all, err := rp.identityOf(raw, idt)
	if err != nil {
		return nil, err
	}
	if err := rp.claimsFromUserInfo(r, p, tok, id, all); err != nil {
		return nil, err
	}
	return id, nil
}

// claimsFromUserInfo reads the subject and tenant claims from the
// provider's userinfo endpoint when the ID token lacks them: a provider
// that issues an access token may keep profile and email claims there
// (OpenID Connect Core 5.4). The answer must be about the ID token's sub.
func (rp *RP) claimsFromUserInfo(r *http.Request, p *provider, tok *oauth2.Token, id *identity, all map[string]any) error {
	_, hasSubject := all[rp.subject]
	_, hasTenant := all[rp.cfg.TenantClaim]
	if hasSubject && (rp.cfg.TenantClaim == "" || hasTenant) || p.p.UserInfoEndpoint() == "" {
		return rp.takeClaims(id, all)
	}
	ui, err := p.p.UserInfo(rp.ctx(r.Context()), oauth2.StaticTokenSource(tok))
	if err != nil {
		return refuse(http.StatusBadGateway, "The identity provider did not tell who you are.", err)
	}
	if ui.Subject != id.idp.Subject {
		return refuse(http.StatusUnauthorized, "The identity provider's answers were about two accounts.", errors.New("userinfo sub differs from the ID token's"))
	}
	more := map[string]any{}
	if err := ui.Claims(&more); err != nil {
		return refuse(http.StatusBadGateway, "The identity provider's answer could not be read.", err)
	}
	for k, v := range more {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return rp.takeClaims(id, all)
}

// takeClaims sets the session's subject and tenant from the claims.
func (rp *RP) takeClaims(id *identity, all map[string]any) error {
	id.subject, _ = all[rp.subject].(string)
	if id.subject == "" {
		return refuse(http.StatusForbidden, "Your account at the identity provider has no "+rp.subject+", which this application needs.", errors.New("no subject claim"))
	}
	if rp.cfg.TenantClaim != "" {
		id.tenant, _ = all[rp.cfg.TenantClaim].(string)
	}
	return nil
}

// claims are the ID token claims lapse reads besides go-oidc's.
type claims struct {
	AZP      string   `json:"azp"`
	SID      string   `json:"sid"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime *float64 `json:"auth_time"`
}

// identityOf reads the identity from a verified ID token, and returns
// all its claims.
func (rp *RP) identityOf(raw string, idt *gooidc.IDToken) (*identity, map[string]any, error) {
	var c claims
	all := map[string]any{}
	if err := idt.Claims(&c); err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be read.", err)
	}
	if err := idt.Claims(&all); err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be read.", err)
	}
	if len(idt.Audience) > 1 && c.AZP != rp.cfg.ClientID {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer was for another application.", errors.New("azp is not the client id"))
	}
	id := &identity{raw: raw, aal: rp.cfg.Assurance.Level(c.ACR, c.AMR), amr: cleanAMR(c.AMR),
		idp: lapse.IdPSession{Issuer: rp.cfg.Issuer, Subject: idt.Subject, SID: c.SID}}
	if c.AuthTime != nil {
		id.authTime = time.Unix(int64(*c.AuthTime), 0).UTC()
	}
	return id, all, nil
}

// cleanAMR keeps the amr values a session can hold.
func cleanAMR(amr []string) []string {
	out := []string{}
	for _, m := range amr {
		if len(out) < lapse.MaxAMR && m != "" && len(m) <= 32 && !strings.ContainsFunc(m, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			out = append(out, m)
		}
	}
	return out
}

// completeSignIn creates the session and goes to rd.
func (rp *RP) completeSignIn(w http.ResponseWriter, r *http.Request, f *flow, id *identity) error {
	tok, s, err := rp.m.Create(r.Context(), lapse.CreateParams{
		Subject: id.subject, Tenant: id.tenant, Tier: rp.cfg.Tier, AAL: id.aal, AMR: id.amr,
		IP: rp.clientIP(r), UserAgent: truncateUA(r.UserAgent()), IdP: id.idp, AuthenticatedAt: id.authTime,
	})
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeInvalid, lapse.CodeUnknownTenant, lapse.CodeUnknownTier:
		return refuse(http.StatusForbidden, "Your account cannot sign in to this application: "+lapse.ErrorMessage(err)+".", err)
	default:
		return err
	}
	rp.setSession(w, r, tok.Reveal(), s, id.raw)
	if rp.cfg.Device != nil {
		if err := rp.cfg.Device.Offer(w, r, s); err != nil {
			// The session works unbound meanwhile; a tier that requires
			// binding refuses it after its grace.
			rp.log.ErrorContext(r.Context(), "oidc: offering device binding", "err", err)
		}
	}
	http.Redirect(w, r, f.RD, http.StatusFound)
	return nil
}

// completeStepUp checks that the provider authenticated the session's
// own account as strongly and as recently as the flow asked, then
// rotates the session's token.
func (rp *RP) completeStepUp(w http.ResponseWriter, r *http.Request, f *flow, id *identity) error {
	c, err := r.Cookie(rp.cookie)
	if err != nil {
		return refuse(http.StatusUnauthorized, "Your session ended meanwhile. Sign in again.", err)
	}
	s, err := rp.m.Current(r.Context(), c.Value)
	if err != nil || s.ID != f.Session {
		return refuse(http.StatusUnauthorized, "Your session ended meanwhile. Sign in again.", err)
	}
	if s.IdP.Issuer != id.idp.Issuer || s.IdP.Subject != id.idp.Subject {
		return refuse(http.StatusForbidden, "You signed in as another account at the identity provider than this session's.", errors.New("step-up by another account"))
	}
	if err := rp.fresh(f, id); err != nil {
		return err
	}
	// The browser that stepped up is the session's client from now on.
	tok, ns, err := rp.m.StepUpAt(lapse.WithClient(r.Context(), rp.browser(r)), c.Value, max(id.aal, s.AAL), id.amr, lapse.ActorIdP, id.authTime)
	if err != nil {
		return refuse(http.StatusConflict, "Your session could not be raised: "+lapse.ErrorMessage(err)+". Try again.", err)
	}
	rp.setSession(w, r, tok.Reveal(), ns, id.raw)
	http.Redirect(w, r, f.RD, http.StatusFound)
	return nil
}

// authSkew is how far the provider's clock may be behind lapse's when a
// fresh login was asked for.
const authSkew = 2 * time.Minute

// fresh checks the acr/amr and auth_time of a step-up's answer.
func (rp *RP) fresh(f *flow, id *identity) error {
	if id.aal < f.AAL {
		return refuse(http.StatusForbidden, "The identity provider did not authenticate you as strongly as this page needs (AAL "+strconv.Itoa(f.AAL)+").", errors.New("acr/amr below the AAL asked"))
	}
	if f.MaxAge == 0 && !f.Login {
		return nil
	}
	now := rp.m.Clock().Now()
	stale := id.authTime.IsZero()
	if f.MaxAge > 0 && !stale {
		stale = !now.Before(id.authTime.Add(time.Duration(f.MaxAge) * time.Second))
	}
	if f.Login && !stale {
		stale = id.authTime.Before(time.Unix(f.At, 0).Add(-authSkew))
	}
	if stale {
		return refuse(http.StatusForbidden, "The identity provider did not authenticate you again: this page needs a recent sign-in.", errors.New("auth_time missing or too old"))
	}
	return nil
}

// setSession sets the session cookie and the sealed ID token hint.
func (rp *RP) setSession(w http.ResponseWriter, r *http.Request, token string, s *lapse.Session, rawIDToken string) {
	sec := rp.secure(r)
	http.SetCookie(w, &http.Cookie{Name: rp.cookie, Value: token, Path: "/", Secure: sec, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if !rp.cfg.EndSession {
		return
	}
	name := rp.hintCookie()
	v, err := rp.seal.seal(name, hint{Session: s.ID, IDToken: rawIDToken})
	if err != nil || len(v) > maxHintCookie {
		// Too large for a cookie: logout at the provider goes without
		// id_token_hint (with client_id), where the provider may ask.
		http.SetCookie(w, &http.Cookie{Name: name, Path: Prefix + "/", MaxAge: -1, Secure: sec, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: Prefix + "/", Secure: sec, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: int(s.Policy.AbsoluteTimeout / time.Second)})
}

// maxHintCookie keeps the hint cookie within what every browser takes.
const maxHintCookie = 3800

// hint is the ID token hint, sealed in a cookie sent only to the logout
// route: bound to its session, readable by lapse alone.
type hint struct {
	Session string `json:"sid"`
	IDToken string `json:"idt"`
}

func (rp *RP) hintCookie() string { return rp.cookie + "_idt" }

// browser is the browser r came from: its address, read through the
// trusted proxies, and its User-Agent.
func (rp *RP) browser(r *http.Request) lapse.Client {
	return lapse.Client{IP: throttle.ClientAddr(r, rp.cfg.TrustedProxies), UserAgent: truncateUA(r.UserAgent())}
}

// clientIP is the address of the browser r came from, or "".
func (rp *RP) clientIP(r *http.Request) string {
	if a := rp.browser(r).IP; a.IsValid() {
		return a.String()
	}
	return ""
}

func truncateUA(ua string) string {
	if len(ua) > lapse.MaxUserAgentLen {
		ua = ua[:lapse.MaxUserAgentLen]
	}
	return strings.ToValidUTF8(ua, "")
}

// truncate shortens a value from the request for a log or a page.
func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
