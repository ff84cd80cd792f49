package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	to, err := rp.begin(w, r, f, opts, rp.secure(r))
	var ref *errRefused
	if errors.As(err, &ref) {
		rp.page(w, ref.status, ref.msg, f.RD)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
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
	f, err := rp.spend(w, r, rp.secure(r))
	if err == nil {
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

// identity is what lapse takes from a verified ID token.
type identity struct {
	raw      string
	subject  string // the lapse subject
	tenant   string
	idp      lapse.IdPSession
	aal      int
	amr      []string
	acr      string
	authTime time.Time // zero when the token has none
}

// complete exchanges the code and acts on the verified identity.
func (rp *RP) complete(w http.ResponseWriter, r *http.Request, f *flow) error {
	need := []string{rp.subject}
	if rp.cfg.TenantClaim != "" {
		need = append(need, rp.cfg.TenantClaim)
	}
	id, all, err := rp.answer(r, f, need)
	if err == nil {
		err = rp.takeClaims(id, all)
	}
	if err != nil {
		return err
	}
	if f.Kind == kindStepUp {
		return rp.completeStepUp(w, r, f, id)
	}
	return rp.completeSignIn(w, r, f, id)
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
