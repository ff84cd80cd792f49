package main

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/forwardauth"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/web"
)

// mountGateway adds the forward-auth gateway of cfg's forward_auth
// section to mux, if there is one: GET /v1/auth-request and
// /v1/forward-auth for the proxy, and under forwardauth.Prefix (/.lapse/)
// what the browser reaches through the proxy on the app's origin: the
// client's files, its session's own routes (authenticated by the
// gateway's cookie, passkeys among them), the step-up page (which offers
// a passkey), the passkeys page (with a passkeys section) and the
// signed-out page.
func mountGateway(mux *http.ServeMux, cfg *config.File, m *lapse.Manager, events httpapi.Watcher, factors lapse.FactorService, keys lapse.PasskeyService, log *slog.Logger) error {
	fa := cfg.ForwardAuth
	if fa == nil {
		return nil
	}
	gc := fa.Config
	gc.Manager, gc.Logger = m, log
	if fa.ProxyKeyEnv != "" {
		key := os.Getenv(fa.ProxyKeyEnv)
		if len(key) < 32 {
			return fmt.Errorf("%s: forward_auth.proxy_key_env: $%s must hold the proxy's key, at least 32 characters (make one with 'openssl rand -hex 32')", cfg.Path, fa.ProxyKeyEnv)
		}
		want := lapse.HashSecret(key)
		gc.ProxyKey = func(k string) bool {
			got := lapse.HashSecret(k)
			return subtle.ConstantTimeCompare(got[:], want[:]) == 1
		}
	}
	g, err := forwardauth.New(gc)
	if err != nil {
		return err
	}
	g.Register(mux)

	// The session's own routes, read from the gateway's cookie. No API
	// key opens anything here: the admin routes of this second server
	// are not mounted, and would refuse every key if they were.
	// With passkeys, the step-up by passkey replaces the gateway's cookie.
	api, err := httpapi.New(httpapi.Config{Manager: m, Keys: httpapi.NewKeys(), Logger: log, Events: events, SessionCookie: g.Cookie(),
		Passkeys: keys, StepUp: g.StepUp})
	if err != nil {
		return err
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
		return err
	}
	mux.Handle(forwardauth.Prefix+"/stepup", pages.StepUp())
	if keys != nil {
		mux.Handle(forwardauth.Prefix+"/passkeys", pages.Passkeys())
	}
	mux.Handle("GET "+forwardauth.Prefix+"/signed-out", pages.SignedOut())
	mux.Handle(forwardauth.Prefix+"/", http.NotFoundHandler())
	return nil
}
