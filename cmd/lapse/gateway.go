package main

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/forwardauth"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/oidc"
	"github.com/lapsehq/lapse/problem"
	"github.com/lapsehq/lapse/web"
)

// mountGateway adds the forward-auth gateway of cfg's forward_auth
// section to mux, if there is one: GET /v1/auth-request and
// /v1/forward-auth for the proxy, and under forwardauth.Prefix (/.lapse/)
// what the browser reaches through the proxy on the app's origin: the
// client's files, its session's own routes (authenticated by the
// gateway's cookie, passkeys among them), the step-up page (which offers
// a passkey), the passkeys page (with a passkeys section) and the
// signed-out page. ring holds the API keys a proxy may send
// (forward_auth.proxy_api_keys); nil for none.
func mountGateway(mux *http.ServeMux, cfg *config.File, m *lapse.Manager, ring *lapse.Keyring, events httpapi.Watcher, factors lapse.FactorService, keys lapse.PasskeyService, log *slog.Logger) (*forwardauth.Gateway, error) {
	fa := cfg.ForwardAuth
	if fa == nil {
		return nil, nil
	}
	gc := fa.Config
	gc.Manager, gc.Logger = m, log
	gc.DeviceBinding = bindsDevices(m.Policy())
	pk, err := proxyKeyCheck(cfg, ring)
	if err != nil {
		return nil, err
	}
	gc.ProxyKey = pk
	g, err := forwardauth.New(gc)
	if err != nil {
		return nil, err
	}
	g.Register(mux)

	// The session's own routes, read from the gateway's cookie. No API
	// key opens anything here: the admin routes of this second server
	// are not mounted, and would refuse every key if they were.
	// With passkeys, the step-up by passkey replaces the gateway's cookie.
	// The browser's address is read through the proxies, as the gateway
	// reads it: else every browser would count as the proxy, for token
	// guessing and client drift alike.
	api, err := httpapi.New(httpapi.Config{Manager: m, Keys: httpapi.NewKeys(), Logger: log, Events: events, SessionCookie: g.Cookie(),
		Passkeys: keys, StepUp: g.StepUp, TrustedProxies: append(slices.Clone(cfg.TrustedProxies), g.Proxies()...),
		Device: g.Device().CheckFunc()})
	if err != nil {
		return nil, err
	}
	sub := http.NewServeMux()
	api.Register(sub)
	session := http.StripPrefix(forwardauth.Prefix, sub)
	mux.Handle(forwardauth.Prefix+"/v1/session", session)
	mux.Handle(forwardauth.Prefix+"/v1/session/", session)
	mux.Handle("GET "+forwardauth.Prefix+"/web/", http.StripPrefix(forwardauth.Prefix+"/web/", web.Assets()))
	signIn := fa.SignInURL
	if signIn == "" {
		signIn = forwardauth.DefaultSignInURL
	}
	pages, err := web.NewPages(web.Config{
		Manager: m, Session: g.Session, StepUp: g.StepUp, Factors: factors, Passkeys: keys,
		SignInURL: signIn, AssetsURL: forwardauth.Prefix + "/web", Logger: log,
		StepUpURL: func(back string) string { return forwardauth.Prefix + "/stepup?" + url.Values{"rd": {back}}.Encode() },
	})
	if err != nil {
		return nil, err
	}
	mux.Handle(forwardauth.Prefix+"/stepup", pages.StepUp())
	if keys != nil {
		mux.Handle(forwardauth.Prefix+"/passkeys", pages.Passkeys())
	}
	mux.Handle("GET "+forwardauth.Prefix+"/signed-out", pages.SignedOut())
	if d := g.Device(); d != nil {
		mux.Handle(d.Prefix(), d.Handler()) // DBSC registration and refresh
	}
	mux.Handle(forwardauth.Prefix+"/", http.NotFoundHandler())
	return g, nil
}

// proxyKeyCheck returns the check of the key a proxy sends, nil for none:
// the key of forward_auth.proxy_key_env, or with proxy_api_keys an API
// key of ring that holds sessions:verify. A key bound to a tenant is
// refused: the gateway verifies the sessions of every tenant.
func proxyKeyCheck(cfg *config.File, ring *lapse.Keyring) (func(context.Context, string) error, error) {
	fa := cfg.ForwardAuth
	var want *lapse.TokenHash
	if fa.ProxyKeyEnv != "" {
		key := os.Getenv(fa.ProxyKeyEnv)
		if len(key) < 32 {
			return nil, fmt.Errorf("%s: forward_auth.proxy_key_env: $%s must hold the proxy's key, at least 32 characters (make one with 'openssl rand -hex 32')", cfg.Path, fa.ProxyKeyEnv)
		}
		h := lapse.HashSecret(key)
		want = &h
	}
	switch {
	case !fa.ProxyAPIKeys:
		ring = nil
	case ring == nil:
		return nil, fmt.Errorf("%s: forward_auth.proxy_api_keys: the store keeps no API keys", cfg.Path)
	}
	if want == nil && ring == nil {
		return nil, nil
	}
	return func(ctx context.Context, k string) error {
		if got := lapse.HashSecret(k); want != nil && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
		if ring == nil {
			return errNotProxyKey
		}
		key, ok, err := ring.Authenticate(ctx, k)
		switch {
		case err != nil:
			return err
		case !ok:
			return errNotProxyKey
		case !key.Has(lapse.ScopeSessionsVerify):
			return lapse.Errorf(problem.CodeInsufficientScope, "this API key lacks the scope sessions:verify")
		case key.Tenant != "":
			return lapse.Errorf(problem.CodeInsufficientScope, "this API key is bound to a tenant; the gateway verifies every tenant's sessions")
		}
		return nil
	}, nil
}

var errNotProxyKey = lapse.Errorf(problem.CodeUntrustedProxy, "not the proxy's key")

// bindsDevices reports whether a tier of p (or of a tenant) binds
// sessions to devices (DBSC).
func bindsDevices(p *lapse.Policy) bool {
	for _, tenant := range append([]string{""}, p.TenantNames()...) {
		for _, name := range p.TierNames() {
			if _, t, err := p.Tier(tenant, name); err == nil && t.Device().Mode != lapse.DeviceBindingOff {
				return true
			}
		}
	}
	return false
}

// mountOIDC adds sign-in through the identity provider of cfg's oidc
// section to mux, if there is one, under oidc.Prefix (/.lapse/oidc/): on
// the app's origin behind the gateway's proxy, or on lapse's own for an
// app that calls lapse's API. g is the gateway, nil without one: its
// rules tell the step-up what a page needs. Without a gateway, lapse's
// signed-out page and the client's files are served under /.lapse/ too.
func mountOIDC(mux *http.ServeMux, cfg *config.File, m *lapse.Manager, g *forwardauth.Gateway, log *slog.Logger) error {
	o := cfg.OIDC
	if o == nil {
		return nil
	}
	rc := o.Config
	rc.Manager, rc.Logger = m, log
	secret, err := oidcSecret(cfg)
	if err != nil {
		return err
	}
	rc.ClientSecret = secret
	rc.TrustedProxies = cfg.TrustedProxies
	if g != nil {
		rc.Requirement, rc.Device = g.Requirement, g.Device()
		rc.TrustedProxies = append(slices.Clone(cfg.TrustedProxies), g.Proxies()...)
	}
	rp, err := oidc.New(rc)
	if err != nil {
		return err
	}
	rp.Register(mux)
	if g != nil {
		return nil
	}
	cookie := rc.Cookie
	if cookie == "" {
		cookie = oidc.DefaultCookie
	}
	pages, err := web.NewPages(web.Config{
		Manager: m, SignInURL: oidc.Prefix + "/login", AssetsURL: forwardauth.Prefix + "/web", Logger: log,
		Session: func(r *http.Request) (lapse.Session, bool) {
			c, err := r.Cookie(cookie)
			if err != nil {
				return lapse.Session{}, false
			}
			s, err := m.Current(r.Context(), c.Value)
			return s, err == nil
		},
	})
	if err != nil {
		return err
	}
	mux.Handle("GET "+forwardauth.Prefix+"/signed-out", pages.SignedOut())
	mux.Handle("GET "+forwardauth.Prefix+"/web/", http.StripPrefix(forwardauth.Prefix+"/web/", web.Assets()))
	return nil
}

// oidcSecret reads the client secret from the environment variable or
// the file the oidc section names.
func oidcSecret(cfg *config.File) (string, error) {
	return clientSecret(cfg.Path, "oidc", cfg.OIDC.SecretEnv, cfg.OIDC.SecretFile)
}

// clientSecret reads a client secret at an identity provider from the
// environment variable env or else the file file, which the section at
// key of the file at path names.
func clientSecret(path, key, env, file string) (string, error) {
	if env != "" {
		if s := os.Getenv(env); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("%s: %s.client_secret_env: $%s is empty; it must hold the client secret the identity provider gave lapse", path, key, env)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %s.client_secret_file: %v", path, key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s.client_secret_file: %s is empty", path, key, file)
	}
	return s, nil
}

// consoleIdP returns the console's sign-in at an identity provider that
// cfg's console.oidc section configures, or nil without one.
func consoleIdP(cfg *config.File, m *lapse.Manager, log *slog.Logger) (*console.IdP, error) {
	if cfg.Console == nil || cfg.Console.OIDC == nil {
		return nil, nil
	}
	o := cfg.Console.OIDC
	secret, err := clientSecret(cfg.Path, "console.oidc", o.SecretEnv, o.SecretFile)
	if err != nil {
		return nil, err
	}
	lc := o.LoginConfig
	lc.ClientSecret, lc.Clock, lc.Logger, lc.CookiePrefix = secret, m.Clock(), log, "lapse_console_oidc_"
	login, err := oidc.NewLogin(lc)
	if err != nil {
		return nil, err
	}
	return &console.IdP{Login: login, Name: o.Name, RoleClaim: o.RoleClaim, Roles: o.Roles, RequireAAL: o.RequireAAL}, nil
}
