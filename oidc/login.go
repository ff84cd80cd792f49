package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/lapsehq/lapse"
)

// kindLogin is the kind of a [Login]'s flows: a flow of the platform's
// relying party never completes there, nor the other way round.
const kindLogin = "login"

// LoginConfig configures a [Login]. Issuer, ClientID, ClientSecret,
// RedirectURL, CallbackPath and Clock are required; every other zero
// value is a documented default.
type LoginConfig struct {
	// Issuer, ClientID, ClientSecret and Scopes are as in [Config]; the
	// secret also keys the flow cookies.
	Issuer, ClientID, ClientSecret string
	Scopes                         []string
	// RedirectURL is the callback's absolute URL; its path must be
	// CallbackPath, which also scopes the flow cookies' path (its
	// directory).
	RedirectURL, CallbackPath string
	// CookiePrefix starts the names of the flow cookies; "" means
	// "lapse_login_".
	CookiePrefix string
	// Assurance maps the ID token's acr and amr to an AAL.
	Assurance Assurance
	// Clock is the clock of flows and token checks.
	Clock lapse.Clock
	// HTTPClient talks to the provider; nil means a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// Logger receives failures of back-channel logouts; nil discards.
	Logger *slog.Logger
}

// Validate reports the configuration's problems as a
// [*lapse.PolicyError] whose paths are its keys in a configuration file,
// such as "redirect_url" (the caller prefixes its section's path).
func (cfg *LoginConfig) Validate() error {
	var probs []*lapse.FieldError
	bad := func(path, format string, args ...any) {
		probs = append(probs, &lapse.FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if err := checkIssuer(cfg.Issuer); err != nil {
		bad("issuer", "%v", err)
	}
	if cfg.ClientID == "" {
		bad("client_id", "is required: the client's id at the provider")
	}
	if err := checkRedirect(cfg.RedirectURL, cfg.CallbackPath); err != nil {
		bad("redirect_url", "%v", err)
	}
	if cfg.Scopes != nil && !slices.Contains(cfg.Scopes, "openid") {
		bad("scopes", "must include openid")
	}
	cfg.Assurance.validate(bad)
	if len(probs) > 0 {
		return &lapse.PolicyError{Problems: probs}
	}
	return nil
}

// Login is an OpenID Connect sign-in that ends in its caller rather than
// in a platform session: the console's operators sign in with it. It
// runs the relying party's flow (authorization code with PKCE, state and
// nonce sealed in a cookie of the browser that started it, ID token
// verification, userinfo for missing claims) and hands the verified
// [Claims] back. It is safe for concurrent use.
type Login struct {
	pt *party
}

// NewLogin returns a sign-in for cfg. It does no I/O: the provider is
// discovered on first use. It fails like [LoginConfig.Validate], or when
// the client secret is empty.
func NewLogin(cfg LoginConfig) (*Login, error) {
	if cfg.Clock == nil {
		return nil, errors.New("oidc: LoginConfig.Clock is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("oidc: the client secret is empty")
	}
	prefix := cfg.CookiePrefix
	if prefix == "" {
		prefix = "lapse_login_"
	}
	// The flow cookies go to the callback's directory, where Start is too.
	dir := strings.TrimSuffix(path.Dir(cfg.CallbackPath), "/") + "/"
	pt, err := newParty(partyConfig{issuer: cfg.Issuer, clientID: cfg.ClientID, clientSecret: cfg.ClientSecret,
		redirectURL: cfg.RedirectURL, scopes: cfg.Scopes, assurance: cfg.Assurance, clock: cfg.Clock,
		cookiePrefix: prefix, cookiePath: dir, client: cfg.HTTPClient, log: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Login{pt: pt}, nil
}

// Start sends the browser to the provider to sign in, and back to the
// callback, after which [Login.Finish] returns next: the caller checks
// next (no open redirect) before. An aal above 1 asks the provider for
// the configured acr values that mean at least that much (acr_values),
// where there are any. secure sets the flow cookie's Secure attribute.
// A failure is for [Refusal].
func (l *Login) Start(w http.ResponseWriter, r *http.Request, next string, aal int, secure bool) error {
	var opts []oauth2.AuthCodeOption
	if acr := l.pt.assurance.acrValues(aal); aal > 1 && len(acr) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(acr, " ")))
	}
	to, err := l.pt.begin(w, r, &flow{Kind: kindLogin, RD: next}, opts, secure)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// Claims are what the provider said of a sign-in, verified.
type Claims struct {
	// IdP is the provider's session: its issuer, the account's sub and
	// the session's sid (which back-channel logout names).
	IdP lapse.IdPSession
	// AAL is the assurance level Assurance reads from ACR and AMR.
	AAL int
	ACR string
	AMR []string
	// AuthTime is when the provider authenticated the user; zero when
	// it did not say.
	AuthTime time.Time
	// All are the ID token's claims, with the userinfo answer's for the
	// claims asked for that the ID token lacks.
	All map[string]any
}

// Finish completes a sign-in at the callback: it opens the flow of the
// state the provider sent back (and clears its cookie), exchanges the
// code, verifies the ID token, and reads the userinfo endpoint when the
// ID token lacks one of need. It returns the claims and the next the
// flow was started with. A failure is for [Refusal].
func (l *Login) Finish(w http.ResponseWriter, r *http.Request, need []string, secure bool) (*Claims, string, error) {
	w.Header().Set("Cache-Control", "no-store")
	f, err := l.pt.spend(w, r, secure)
	if err != nil {
		return nil, "", err
	}
	if f.Kind != kindLogin {
		return nil, "", refuse(http.StatusBadRequest, "This sign-in link is not valid here. Start again.", errors.New("a flow of another kind"))
	}
	id, all, err := l.pt.answer(r, f, need)
	if err != nil {
		return nil, f.RD, err
	}
	return &Claims{IdP: id.idp, AAL: id.aal, ACR: id.acr, AMR: id.amr, AuthTime: id.authTime, All: all}, f.RD, nil
}

// BackChannelLogout serves the provider's back-channel logout, as the
// relying party's does: a verified logout_token, whose jti guard spends
// once on every node, and end ends the sessions of the provider session
// it names.
func (l *Login) BackChannelLogout(w http.ResponseWriter, r *http.Request, guard lapse.ReplayGuard, end func(context.Context, lapse.IdPSession) (int, error)) {
	l.pt.backChannel(w, r, guard, end)
}

// Refusal returns the HTTP status and the message for the user of a
// failure of [Login.Start] or [Login.Finish], and the cause to log
// (never a token): a refused sign-in says why, anything else is a 500.
func Refusal(err error) (status int, msg string, cause error) {
	var ref *errRefused
	if errors.As(err, &ref) {
		return ref.status, ref.msg, ref.cause
	}
	return http.StatusInternalServerError, "The sign-in could not be completed.", err
}
