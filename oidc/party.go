package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/lapsehq/lapse"
)

// party is what the relying party of the platform's users and the
// console's sign-in ([Login]) share: the client at the provider, its
// discovery, the flows sealed in cookies, the code exchange and the
// verification of ID tokens and logout tokens. It is safe for concurrent
// use.
type party struct {
	issuer, clientID, clientSecret, redirectURL string
	scopes                                      []string
	assurance                                   Assurance
	clock                                       lapse.Clock
	// cookiePrefix names the flow cookies, cookiePath is the path they
	// are sent to (the callback's).
	cookiePrefix, cookiePath string
	seal                     *sealer
	client                   *http.Client
	log                      *slog.Logger

	mu       sync.Mutex
	provider *provider // discovered on first use
}

// partyConfig configures a party; scopes, client and log have defaults.
type partyConfig struct {
	issuer, clientID, clientSecret, redirectURL string
	scopes                                      []string
	assurance                                   Assurance
	clock                                       lapse.Clock
	cookiePrefix, cookiePath                    string
	client                                      *http.Client
	log                                         *slog.Logger
}

func newParty(c partyConfig) (*party, error) {
	seal, err := newSealer(c.clientSecret)
	if err != nil {
		return nil, err
	}
	p := &party{issuer: c.issuer, clientID: c.clientID, clientSecret: c.clientSecret, redirectURL: c.redirectURL,
		scopes: c.scopes, assurance: c.assurance, clock: c.clock, cookiePrefix: c.cookiePrefix, cookiePath: c.cookiePath,
		seal: seal, client: c.client, log: c.log}
	if p.scopes == nil {
		p.scopes = DefaultScopes
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// provider is what discovery found.
type provider struct {
	p          *gooidc.Provider
	oauth      oauth2.Config
	verifier   *gooidc.IDTokenVerifier
	endSession string
}

// ctx returns a context whose provider calls use the party's HTTP client.
func (pt *party) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, pt.client)
}

// discover returns the provider, reading its discovery document the first
// time (and again after a failure).
func (pt *party) discover(ctx context.Context) (*provider, error) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.provider != nil {
		return pt.provider, nil
	}
	// The provider keeps the client for its key set; not the request's
	// context, which ends with the request.
	p, err := gooidc.NewProvider(pt.ctx(context.WithoutCancel(ctx)), pt.issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery of %s: %w", pt.issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	pt.provider = &provider{
		p: p,
		oauth: oauth2.Config{ClientID: pt.clientID, ClientSecret: pt.clientSecret, Endpoint: p.Endpoint(),
			RedirectURL: pt.redirectURL, Scopes: pt.scopes},
		verifier:   p.Verifier(&gooidc.Config{ClientID: pt.clientID, Now: pt.clock.Now}),
		endSession: meta.EndSession,
	}
	return pt.provider, nil
}

// flowCookie is the name of the cookie of the flow with state: several
// sign-ins (two tabs) do not overwrite each other's.
func (pt *party) flowCookie(state string) string {
	if len(state) > 16 {
		state = state[:16]
	}
	return pt.cookiePrefix + state
}

// begin seals f in a cookie and returns the provider's authorization URL
// for it, with PKCE, state, nonce and opts.
func (pt *party) begin(w http.ResponseWriter, r *http.Request, f *flow, opts []oauth2.AuthCodeOption, secure bool) (string, error) {
	p, err := pt.discover(r.Context())
	if err != nil {
		pt.log.ErrorContext(r.Context(), "oidc: the identity provider cannot be reached", "err", err)
		return "", refuse(http.StatusBadGateway, "The identity provider cannot be reached right now. Try again in a moment.", err)
	}
	f.State, f.Nonce, f.Verifier = lapse.NewID(""), lapse.NewID(""), oauth2.GenerateVerifier()
	f.At = pt.clock.Now().Unix()
	name := pt.flowCookie(f.State)
	v, err := pt.seal.seal(name, f)
	if err != nil {
		return "", refuse(http.StatusInternalServerError, "The sign-in could not start.", err)
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: pt.cookiePath, MaxAge: int(flowTTL / time.Second),
		Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	opts = append(opts, oauth2.S256ChallengeOption(f.Verifier), gooidc.Nonce(f.Nonce))
	return p.oauth.AuthCodeURL(f.State, opts...), nil
}

// spend opens the flow whose state the provider sent back to the
// callback r and clears its cookie: a flow is spent, whatever comes next.
func (pt *party) spend(w http.ResponseWriter, r *http.Request, secure bool) (*flow, error) {
	f, err := pt.flowOf(r, r.URL.Query().Get("state"))
	if f != nil {
		http.SetCookie(w, &http.Cookie{Name: pt.flowCookie(f.State), Path: pt.cookiePath, MaxAge: -1,
			Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	return f, err
}

// flowOf opens the flow whose state the provider sent back, from its
// cookie; the state must be the one the flow was started with.
func (pt *party) flowOf(r *http.Request, state string) (*flow, error) {
	const restart = "This sign-in link is not valid in this browser, or has expired. Start again."
	if state == "" {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("no state"))
	}
	c, err := r.Cookie(pt.flowCookie(state))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("no flow cookie for this state"))
	}
	var f flow
	if err := pt.seal.open(c.Name, c.Value, &f); err != nil {
		return nil, refuse(http.StatusBadRequest, restart, err)
	}
	if subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil, refuse(http.StatusBadRequest, restart, errors.New("the state differs from the flow's"))
	}
	if now := pt.clock.Now().Unix(); now-f.At > int64(flowTTL/time.Second) || f.At > now+60 {
		return &f, refuse(http.StatusBadRequest, restart, errors.New("the flow expired"))
	}
	return &f, nil
}

// answer reads the provider's answer to f at the callback r: an error it
// sent, or the code, which it exchanges. need are the claims to read
// from the userinfo endpoint when the ID token lacks them.
func (pt *party) answer(r *http.Request, f *flow, need []string) (*identity, map[string]any, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider did not sign you in ("+truncate(e)+"). Start again.", errors.New(truncate(q.Get("error_description"))))
	}
	return pt.exchange(r, f, q.Get("code"), need)
}

// exchange trades the code for tokens (with the PKCE verifier) and
// verifies the ID token: signature, iss, aud, exp (go-oidc), azp, nonce.
// It returns the identity and every claim of the ID token, and of the
// userinfo answer for the claims in need the ID token lacks.
func (pt *party) exchange(r *http.Request, f *flow, code string, need []string) (*identity, map[string]any, error) {
	p, err := pt.discover(r.Context())
	if err != nil {
		return nil, nil, refuse(http.StatusBadGateway, "The identity provider cannot be reached right now. Try again in a moment.", err)
	}
	if code == "" {
		return nil, nil, refuse(http.StatusBadRequest, "The identity provider sent no authorization code. Start again.", nil)
	}
	tok, err := p.oauth.Exchange(pt.ctx(r.Context()), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, nil, refuse(http.StatusBadGateway, "The identity provider did not accept the sign-in. Start again.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, refuse(http.StatusBadGateway, "The identity provider sent no ID token.", nil)
	}
	idt, err := p.verifier.Verify(pt.ctx(r.Context()), raw)
	if err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be verified. Start again.", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer was not for this sign-in. Start again.", errors.New("nonce mismatch"))
	}
	id, all, err := pt.identityOf(raw, idt)
	if err != nil {
		return nil, nil, err
	}
	if err := pt.claimsFromUserInfo(r, p, tok, id, all, need); err != nil {
		return nil, nil, err
	}
	return id, all, nil
}

// claimsFromUserInfo adds to all the claims of the provider's userinfo
// endpoint when the ID token lacks one of need: a provider that issues an
// access token may keep profile and email claims there (OpenID Connect
// Core 5.4). The answer must be about the ID token's sub; it adds no
// claim the ID token has.
func (pt *party) claimsFromUserInfo(r *http.Request, p *provider, tok *oauth2.Token, id *identity, all map[string]any, need []string) error {
	missing := false
	for _, c := range need {
		if _, ok := all[c]; !ok {
			missing = true
		}
	}
	if !missing || p.p.UserInfoEndpoint() == "" {
		return nil
	}
	ui, err := p.p.UserInfo(pt.ctx(r.Context()), oauth2.StaticTokenSource(tok))
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
	return nil
}

// identityOf reads the identity from a verified ID token, and returns
// all its claims.
func (pt *party) identityOf(raw string, idt *gooidc.IDToken) (*identity, map[string]any, error) {
	var c claims
	all := map[string]any{}
	if err := idt.Claims(&c); err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be read.", err)
	}
	if err := idt.Claims(&all); err != nil {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer could not be read.", err)
	}
	if len(idt.Audience) > 1 && c.AZP != pt.clientID {
		return nil, nil, refuse(http.StatusUnauthorized, "The identity provider's answer was for another application.", errors.New("azp is not the client id"))
	}
	id := &identity{raw: raw, aal: pt.assurance.Level(c.ACR, c.AMR), amr: cleanAMR(c.AMR), acr: c.ACR,
		idp: lapse.IdPSession{Issuer: pt.issuer, Subject: idt.Subject, SID: c.SID}}
	if c.AuthTime != nil {
		id.authTime = time.Unix(int64(*c.AuthTime), 0).UTC()
	}
	return id, all, nil
}
