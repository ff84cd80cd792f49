// Package oidc makes lapse an OpenID Connect relying party: users sign in
// at an identity provider (Keycloak, Okta, Entra ID, Auth0, Google...)
// and get a lapse session, whose policy then holds (idle and absolute
// timeouts, assurance per route), and which ends when the provider ends
// its own session.
//
// [RP.Register] serves, under [Prefix] on the app's origin (the path the
// forward-auth gateway's proxy routes to lapse):
//
//   - GET  /.lapse/oidc/login?rd=…   sends the browser to the provider:
//     the authorization-code flow with PKCE (S256), state and nonce;
//   - GET  /.lapse/oidc/callback      checks the provider's answer and
//     its ID token (signature from the JWKS, iss, aud, exp, nonce),
//     creates the session, sets the cookie and goes back to rd, only a
//     path of the app or a configured app origin;
//   - GET  /.lapse/oidc/stepup?rd=…   sends the browser back to the
//     provider for a stronger or more recent authentication (acr_values,
//     max_age or prompt=login), checks acr and auth_time on return and
//     rotates the session's token;
//   - POST /.lapse/oidc/logout        ends the session and, when
//     configured, the provider's (RP-initiated logout, with
//     id_token_hint and post_logout_redirect_uri);
//   - POST /.lapse/oidc/backchannel-logout  the provider's back-channel
//     logout (OpenID Connect Back-Channel Logout 1.0): a verified
//     logout_token, used once on every node, ends every session of the
//     provider's session (sid) or account (sub) with reason idp_logout.
//
// [Login] runs the same flow for another part of lapse and hands the
// verified claims back instead of creating a session: the console's
// operators sign in with it.
//
// See docs/oidc.md.
package oidc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/dbsc"
)

// Prefix is the path under which the relying party's routes live, on the
// app's origin: within the /.lapse/ prefix the proxy routes to lapse.
const Prefix = "/.lapse/oidc"

// CallbackPath is the path of the redirect URL the provider sends the
// browser back to.
const CallbackPath = Prefix + "/callback"

// Defaults of [Config].
const (
	DefaultCookie       = "lapse"
	DefaultSubjectClaim = "sub"
	DefaultSignedOutURL = "/.lapse/signed-out"
)

// DefaultScopes are the scopes asked for when the configuration names
// none.
var DefaultScopes = []string{"openid", "profile", "email"}

// Config configures an [RP]. Manager, Issuer, ClientID, ClientSecret and
// RedirectURL are required; every other zero value is a documented
// default.
type Config struct {
	// Manager creates and ends the sessions. Back-channel logout needs its
	// store to be a [lapse.IdPIndex] and a [lapse.ReplayGuard].
	Manager *lapse.Manager
	// Device, when set, offers device binding (DBSC) at every sign-in:
	// the forward-auth gateway's (its Device method).
	Device *dbsc.Binder
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration" on first use.
	Issuer string
	// ClientID and ClientSecret are the client's credentials at the
	// provider. The secret also keys the cookies lapse seals.
	ClientID, ClientSecret string
	// RedirectURL is the absolute URL of the callback on the app's origin,
	// whose path is [CallbackPath]; register it at the provider.
	RedirectURL string
	// Scopes are the scopes to ask for; nil means DefaultScopes. "openid"
	// is required.
	Scopes []string
	// SubjectClaim is the ID token claim that becomes the session's
	// subject, a string; "" means "sub".
	SubjectClaim string
	// TenantClaim, when set, is the claim that becomes the session's
	// tenant; a token without it signs in without a tenant.
	TenantClaim string
	// Tier is the tier of the sessions; "" means the policy's default.
	Tier string
	// Assurance maps the ID token's acr and amr to the session's AAL.
	Assurance Assurance
	// TrustedProxies are the reverse proxies in front of the relying
	// party's routes, whose X-Forwarded-For names the browser's address;
	// nil trusts none. The address a session is signed in from is the one
	// its later requests are compared with (client drift), so it must be
	// read as the gateway reads theirs.
	TrustedProxies []netip.Prefix
	// AppOrigins are the origins ("https://app.example.com") besides
	// RedirectURL's to which rd may send the browser after sign-in; an rd
	// elsewhere sends it to "/".
	AppOrigins []string
	// Cookie is the name of the session cookie on the app's origin; ""
	// means DefaultCookie ("lapse"), the forward-auth gateway's default.
	Cookie string
	// EndSession, when set, sends the browser on logout to the provider's
	// end_session_endpoint, to end the provider's session too.
	EndSession bool
	// PostLogoutRedirectURL is where the provider sends the browser after
	// its logout; "" means RedirectURL's origin + DefaultSignedOutURL +
	// "?reason=logout". Register it at the provider.
	PostLogoutRedirectURL string
	// SignedOutURL is lapse's signed-out page, a path; "" means
	// DefaultSignedOutURL.
	SignedOutURL string
	// Requirement, when set, tells what the page at rd needs beyond the
	// session's tier (the forward-auth gateway's rule for it): an AAL and
	// a maximum age of the last authentication, for the step-up.
	Requirement func(r *http.Request, rd string) (aal int, maxAuthAge time.Duration)
	// HTTPClient talks to the provider; nil means a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// Logger receives refused sign-ins and logouts (never a token); nil
	// discards.
	Logger *slog.Logger
}

// Validate reports the configuration's problems as a
// [*lapse.PolicyError] whose paths are the keys of the oidc section, such
// as "oidc.redirect_url". p, when not nil, is the policy Tier must name a
// tier of.
func (cfg *Config) Validate(p *lapse.Policy) error {
	var probs []*lapse.FieldError
	bad := func(path, format string, args ...any) {
		probs = append(probs, &lapse.FieldError{Path: "oidc." + path, Message: fmt.Sprintf(format, args...)})
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		bad("issuer", "%v", err)
	}
	if cfg.ClientID == "" {
		bad("client_id", "is required: the client's id at the provider")
	}
	if err := checkRedirect(cfg.RedirectURL, CallbackPath); err != nil {
		bad("redirect_url", "%v", err)
	}
	if cfg.Scopes != nil && !slices.Contains(cfg.Scopes, "openid") {
		bad("scopes", "must include openid")
	}
	cfg.validateLogout(bad)
	if cfg.Cookie != "" && (&http.Cookie{Name: cfg.Cookie, Value: "x"}).Valid() != nil {
		bad("cookie", "%q is not a cookie name", cfg.Cookie)
	}
	cfg.Assurance.validate(bad)
	if cfg.Tier != "" && p != nil {
		if _, ok := p.Tiers[cfg.Tier]; !ok {
			bad("tier", "%q is not a tier of the policy (%s)", cfg.Tier, strings.Join(p.TierNames(), ", "))
		}
	}
	if len(probs) > 0 {
		return &lapse.PolicyError{Problems: probs}
	}
	return nil
}

// validateLogout checks where the browser may be sent after sign-in and
// logout.
func (cfg *Config) validateLogout(bad func(path, format string, args ...any)) {
	for i, o := range cfg.AppOrigins {
		if _, err := parseOrigin(o); err != nil {
			bad(fmt.Sprintf("app_origins[%d]", i), "%v", err)
		}
	}
	if u := cfg.PostLogoutRedirectURL; u != "" && !absoluteHTTP(u) {
		bad("post_logout_redirect_url", "%q is not an absolute http(s) URL", u)
	}
}

func (a *Assurance) validate(bad func(path, format string, args ...any)) {
	for k, v := range a.ACR {
		if v < 1 || v > 3 {
			bad("acr."+k, "must be an AAL: 1, 2 or 3")
		}
	}
	for k, v := range a.AMR {
		if v < 1 || v > 3 {
			bad("amr."+k, "must be an AAL: 1, 2 or 3")
		}
	}
}

func checkIssuer(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("is required: the provider's issuer URL, such as https://idp.example.com/realms/acme")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q is not an issuer URL", s)
	case u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Host)):
		return fmt.Errorf("%q must be https (plain http only on a loopback host, for tests)", s)
	}
	return nil
}

// checkRedirect checks a redirect URL, whose path must be path.
func checkRedirect(s, path string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return fmt.Errorf("is required: the callback's absolute URL, such as https://app.example.com%s", path)
	case err != nil || !absoluteHTTP(s):
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	case u.Path != path || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q must have the path %s and no query", s, path)
	case u.Scheme != "https" && !loopbackHost(u.Host):
		return fmt.Errorf("%q must be https (plain http only on a loopback host)", s)
	}
	return nil
}

func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parseOrigin reads an origin: scheme and host, nothing else.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin such as https://app.example.com", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// RP is the relying party. It is safe for concurrent use.
type RP struct {
	*party
	cfg     Config
	m       *lapse.Manager
	subject string
	cookie  string
	origins []string // allowed rd origins, lower case
	postOut string
}

// New returns a relying party for cfg. It does no I/O: the provider's
// discovery document is read on first use, so that lapse starts while
// the provider is away. It fails like [Config.Validate], or when the
// client secret is empty.
func New(cfg Config) (*RP, error) {
	if cfg.Manager == nil {
		return nil, errors.New("oidc: Config.Manager is required")
	}
	if err := cfg.Validate(cfg.Manager.Policy()); err != nil {
		return nil, err
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("oidc: the client secret is empty")
	}
	if _, ok := cfg.Manager.Store().(lapse.IdPIndex); !ok {
		return nil, errors.New("oidc: the store cannot find sessions by identity provider (lapse.IdPIndex), which back-channel logout needs")
	}
	if _, ok := cfg.Manager.Store().(lapse.ReplayGuard); !ok {
		return nil, errors.New("oidc: the store keeps no single-use keys (lapse.ReplayGuard), which back-channel logout needs")
	}
	pt, err := newParty(partyConfig{issuer: cfg.Issuer, clientID: cfg.ClientID, clientSecret: cfg.ClientSecret,
		redirectURL: cfg.RedirectURL, scopes: cfg.Scopes, assurance: cfg.Assurance, clock: cfg.Manager.Clock(),
		cookiePrefix: "lapse_oidc_", cookiePath: Prefix + "/", client: cfg.HTTPClient, log: cfg.Logger})
	if err != nil {
		return nil, err
	}
	rp := &RP{party: pt, cfg: cfg, m: cfg.Manager, subject: cfg.SubjectClaim, cookie: cfg.Cookie,
		postOut: cfg.PostLogoutRedirectURL}
	if rp.subject == "" {
		rp.subject = DefaultSubjectClaim
	}
	if rp.cookie == "" {
		rp.cookie = DefaultCookie
	}
	if rp.cfg.SignedOutURL == "" {
		rp.cfg.SignedOutURL = DefaultSignedOutURL
	}
	own, _ := parseOrigin(originOf(cfg.RedirectURL))
	rp.origins = append(rp.origins, own)
	for _, o := range cfg.AppOrigins {
		o, _ = parseOrigin(o)
		rp.origins = append(rp.origins, o)
	}
	if rp.postOut == "" {
		rp.postOut = own + rp.cfg.SignedOutURL + "?reason=logout"
	}
	return rp, nil
}

func originOf(s string) string {
	u, _ := url.Parse(s)
	return u.Scheme + "://" + u.Host
}

// Register adds the relying party's routes under [Prefix] to mux.
func (rp *RP) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"/login", rp.login)
	mux.HandleFunc("GET "+CallbackPath, rp.callback)
	mux.HandleFunc("GET "+Prefix+"/stepup", rp.stepUp)
	mux.HandleFunc(Prefix+"/logout", rp.logout)
	mux.HandleFunc("POST "+Prefix+"/backchannel-logout", rp.backChannelLogout)
}
