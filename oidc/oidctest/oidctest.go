// Package oidctest runs a real OpenID Provider for tests: the example OP
// of github.com/zitadel/oidc/v3 (its pkg/op server, its example storage
// and login page), on a loopback port, with one web client for lapse.
//
// The example storage is used as it is, with a thin layer over it for
// what the example leaves out and lapse's tests need: per-user
// authentication methods (amr, and acr when the client asks for
// acr_values), a session id ("sid") in the ID token, registered
// post-logout redirect URIs, and the sending of back-channel logout
// tokens. zitadel's OP advertises back-channel logout but does not send
// logout tokens itself: [Provider.LogoutToken] signs one with the OP's
// own signing key (the key its JWKS publishes), and [Provider.EndSessions]
// POSTs it to the client's back-channel logout URI, as an OP does when a
// user's session ends there.
//
// Knobs a test sets to make the OP misbehave: [Provider.StaleAuth] (an
// auth_time older than max_age asked) and [Provider.WrongNonce].
//
// Users may be in groups ([User.Groups]), which the OP states in a
// "groups" claim (an array of strings), as Keycloak's, Okta's or Entra
// ID's group claims do: in the ID token, or only in the userinfo answer
// after [Provider.GroupsInUserInfo].
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/text/language"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// Credentials of the OP's one client, and its users' password.
const (
	ClientID     = "lapse"
	ClientSecret = "lapse-test-client-secret-0123456789abcdef"
	Password     = "correct horse battery staple"
)

// MFA is the acr value the OP answers when a client asks for it in
// acr_values and the user has a second factor: the multi-factor policy
// of OpenID Provider Authentication Policy Extension 1.0, which Auth0
// and others use.
const MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"

// User is an account at the OP. Its ID is the "sub" of its tokens.
type User struct {
	ID, Username, Email string
	// MFA: the user has a second factor, used when a client asks for
	// acr_values MFA (amr pwd and otp, acr MFA); AlwaysMFA: it is used
	// at every login.
	MFA, AlwaysMFA bool
	// Groups are the user's groups, the "groups" claim.
	Groups []string
}

// Users of every Provider: alice (a password only; groups acme-support
// and auditors), bob (a second factor at every login; group
// lapse-admins), carol (a second factor when asked; no group) and dave
// (a second factor at every login; groups acme-support and
// globex-support).
var Users = []User{
	{ID: "u-alice", Username: "alice", Email: "alice@example.com", Groups: []string{"acme-support", "auditors"}},
	{ID: "u-bob", Username: "bob", Email: "bob@example.com", MFA: true, AlwaysMFA: true, Groups: []string{"lapse-admins"}},
	{ID: "u-carol", Username: "carol", Email: "carol@example.com", MFA: true},
	{ID: "u-dave", Username: "dave", Email: "dave@example.com", MFA: true, AlwaysMFA: true, Groups: []string{"acme-support", "globex-support"}},
}

// Options describe the client registered at the OP.
type Options struct {
	// RedirectURIs and PostLogoutRedirectURIs are the client's registered
	// URIs.
	RedirectURIs, PostLogoutRedirectURIs []string
	// BackChannelLogoutURI is where EndSessions POSTs logout tokens.
	BackChannelLogoutURI string
}

// Provider is a running OP.
type Provider struct {
	// Issuer is its issuer URL, http://127.0.0.1:port.
	Issuer string
	srv    *httptest.Server
	st     *store
	opts   Options
}

// Start runs an OP on a free loopback port until the test ends.
func Start(tb testing.TB, opts Options) *Provider {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	clients := map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, opts.RedirectURIs...)}
	st := &store{Storage: storage.NewStorageWithClients(users{}, clients), postLogout: opts.PostLogoutRedirectURIs,
		requests: map[string]*asked{}, logins: map[string]login{}}
	quiet := slog.New(slog.DiscardHandler)
	srv.Config.Handler = exampleop.SetupServer(issuer, st, quiet, false)
	srv.Start()
	tb.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, srv: srv, st: st, opts: opts}
}

// StaleAuth makes the OP answer every later login with an auth_time d
// ago, whatever max_age the client asked (0 turns it off).
func (p *Provider) StaleAuth(d time.Duration) { p.st.set(func(s *store) { s.stale = d }) }

// GroupsInUserInfo makes the OP state the groups claim in its userinfo
// answers only, not in its ID tokens (on), as providers that keep
// profile claims out of the ID token do.
func (p *Provider) GroupsInUserInfo(on bool) { p.st.set(func(s *store) { s.groupsInUserInfo = on }) }

// WrongNonce makes the OP put another nonce in its ID tokens than the
// client sent.
func (p *Provider) WrongNonce(on bool) { p.st.set(func(s *store) { s.wrongNonce = on }) }

// Asked returns the parameters of the last authorization request the OP
// received: acr_values, max_age, prompt (as they were sent).
func (p *Provider) Asked() url.Values {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return p.st.lastAsked
}

// Terminated returns the users whose session ended at the OP's
// end_session_endpoint (RP-initiated logout), in order.
func (p *Provider) Terminated() []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return slices.Clone(p.st.terminated)
}

// SIDs returns the OP's session ids of user's logins, oldest first.
func (p *Provider) SIDs(userID string) []string {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	var out []string
	for _, l := range p.st.order {
		if p.st.logins[l].user == userID {
			out = append(out, l)
		}
	}
	return out
}

// LogoutClaims are the claims of a logout token; zero fields are left
// out, except those LogoutToken fills in.
type LogoutClaims struct {
	Subject, SID string
	// JTI is the token's id; "" means a fresh random one.
	JTI string
	// IssuedAt defaults to now, Expiry to two minutes after it.
	IssuedAt, Expiry time.Time
	// Nonce, when set, adds a nonce claim (which the spec forbids).
	Nonce string
	// NoEvent leaves the events claim out.
	NoEvent bool
}

// LogoutToken returns a logout token (OpenID Connect Back-Channel Logout
// 1.0) for c, signed with the OP's own signing key, typed logout+jwt.
func (p *Provider) LogoutToken(c LogoutClaims) (string, error) {
	key, err := p.st.SigningKey(context.Background())
	if err != nil {
		return "", err
	}
	return SignLogoutToken(key.Key(), key.ID(), p.Issuer, c)
}

// SignLogoutToken signs a logout token for issuer with any RSA key: the
// OP's, or another (a token the OP did not sign).
func SignLogoutToken(key any, kid, issuer string, c LogoutClaims) (string, error) {
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(2 * time.Minute)
	}
	if c.JTI == "" {
		c.JTI = rand.Text()
	}
	claims := map[string]any{"iss": issuer, "aud": ClientID, "iat": c.IssuedAt.Unix(), "exp": c.Expiry.Unix(), "jti": c.JTI}
	if !c.NoEvent {
		claims["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
	}
	for k, v := range map[string]string{"sub": c.Subject, "sid": c.SID, "nonce": c.Nonce} {
		if v != "" {
			claims[k] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// OtherKey returns a fresh RSA key the OP does not publish.
func OtherKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// PostLogout POSTs a logout token to the client's back-channel logout
// URI and returns the answer's status and body.
func (p *Provider) PostLogout(token string) (int, string, error) {
	if p.opts.BackChannelLogoutURI == "" {
		return 0, "", errors.New("oidctest: no BackChannelLogoutURI")
	}
	resp, err := http.PostForm(p.opts.BackChannelLogoutURI, url.Values{"logout_token": {token}})
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// EndSessions ends userID's sessions at the OP, as an administrator (or
// the user's "sign out everywhere") does there: it sends the client one
// logout token per session, with its sid and the user's sub, and
// returns the first failure.
func (p *Provider) EndSessions(userID string) error {
	for _, sid := range p.SIDs(userID) {
		tok, err := p.LogoutToken(LogoutClaims{Subject: userID, SID: sid})
		if err != nil {
			return err
		}
		status, body, err := p.PostLogout(tok)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("oidctest: back-channel logout of %s: %d %s", sid, status, body)
		}
	}
	return nil
}

var loginID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// SignIn signs in as username at the OP's login page, with a client that
// keeps cookies and follows redirects: it follows start (the relying
// party's sign-in URL) to the login form, fills it in, and follows the
// OP's answer back through the relying party's callback. It returns the
// last answer, unread.
func (p *Provider) SignIn(c *http.Client, start, username string) (*http.Response, error) {
	resp, err := c.Get(start)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginID.FindSubmatch(body)
	if m == nil || !strings.HasPrefix(resp.Request.URL.String(), p.Issuer) {
		return nil, fmt.Errorf("oidctest: %s led to %s (%d), not the OP's login form", start, resp.Request.URL, resp.StatusCode)
	}
	return c.PostForm(p.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {username}, "password": {Password}})
}

// users is the OP's user store.
type users struct{}

func (users) GetUserByID(id string) *storage.User {
	for _, u := range Users {
		if u.ID == id {
			return u.storage()
		}
	}
	return nil
}

func (users) GetUserByUsername(name string) *storage.User {
	for _, u := range Users {
		if u.Username == name {
			return u.storage()
		}
	}
	return nil
}

func (users) ExampleClientID() string { return ClientID }

func (u User) storage() *storage.User {
	return &storage.User{ID: u.ID, Username: u.Username, Password: Password, FirstName: u.Username, LastName: "Example",
		Email: u.Email, EmailVerified: true, PreferredLanguage: language.English}
}

func userByID(id string) User {
	for _, u := range Users {
		if u.ID == id {
			return u
		}
	}
	return User{}
}

// asked is what an authorization request asked for.
type asked struct {
	acr    []string
	maxAge *uint
}

// login is one authentication at the OP: its session.
type login struct {
	user string
	at   time.Time
	mfa  bool
}

// store is the example storage with the layer described in the package
// documentation.
type store struct {
	*storage.Storage
	postLogout []string

	mu         sync.Mutex
	requests   map[string]*asked // by auth request id
	sidOf      map[string]string // auth request id -> sid
	logins     map[string]login  // by sid
	order      []string          // sids, oldest first
	lastAsked  url.Values
	terminated []string
	stale      time.Duration
	wrongNonce bool
	// groupsInUserInfo: the groups claim is in userinfo answers, not in
	// ID tokens.
	groupsInUserInfo bool
}

func (s *store) set(f func(*store)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// CreateAuthRequest records what the request asked for.
func (s *store) CreateAuthRequest(ctx context.Context, r *zoidc.AuthRequest, userID string) (op.AuthRequest, error) {
	req, err := s.Storage.CreateAuthRequest(ctx, r, userID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[req.GetID()] = &asked{acr: r.ACRValues, maxAge: r.MaxAge}
	s.lastAsked = url.Values{"acr_values": {strings.Join(r.ACRValues, " ")}, "prompt": {strings.Join(r.Prompt, " ")}}
	if r.MaxAge != nil {
		s.lastAsked.Set("max_age", fmt.Sprint(*r.MaxAge))
	}
	return req, nil
}

// CheckUsernamePassword is the login form: a success starts a session
// at the OP, with a sid.
func (s *store) CheckUsernamePassword(username, password, id string) error {
	if err := s.Storage.CheckUsernamePassword(username, password, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := users{}.GetUserByUsername(username)
	a := s.requests[id]
	full := userByID(u.ID)
	mfa := full.AlwaysMFA || full.MFA && a != nil && slices.Contains(a.acr, MFA)
	sid := "sid-" + rand.Text()[:12]
	if s.sidOf == nil {
		s.sidOf = map[string]string{}
	}
	s.sidOf[id] = sid
	s.logins[sid] = login{user: u.ID, at: time.Now().Add(-s.stale), mfa: mfa}
	s.order = append(s.order, sid)
	return nil
}

// request is an auth request of the example storage as the OP answers
// it: with the amr, acr, auth_time and nonce of its login.
type request struct {
	op.AuthRequest
	sid   string
	login login
	nonce string
}

func (r *request) GetAMR() []string {
	if r.login.mfa {
		return []string{"pwd", "otp"}
	}
	return []string{"pwd"}
}

func (r *request) GetACR() string {
	if r.login.mfa {
		return MFA
	}
	return ""
}

func (r *request) GetAuthTime() time.Time { return r.login.at }
func (r *request) GetNonce() string       { return r.nonce }

func (s *store) wrap(req op.AuthRequest, err error) (op.AuthRequest, error) {
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sid := s.sidOf[req.GetID()]
	if sid == "" {
		return req, nil // not logged in yet
	}
	w := &request{AuthRequest: req, sid: sid, login: s.logins[sid], nonce: req.GetNonce()}
	if s.wrongNonce {
		w.nonce = "not-" + w.nonce
	}
	return w, nil
}

func unwrap[T any](r T) T {
	if w, ok := any(r).(*request); ok {
		if t, ok := w.AuthRequest.(T); ok {
			return t
		}
	}
	return r
}

func (s *store) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByID(ctx, id))
}

func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByCode(ctx, code))
}

func (s *store) CreateAccessToken(ctx context.Context, r op.TokenRequest) (string, time.Time, error) {
	return s.Storage.CreateAccessToken(ctx, unwrap(r))
}

func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	return s.Storage.CreateAccessAndRefreshTokens(ctx, unwrap(r), current)
}

// SetUserinfoFromRequest adds the login's sid, and the user's groups, to
// the ID token.
func (s *store) SetUserinfoFromRequest(ctx context.Context, info *zoidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, unwrap(r), scopes); err != nil {
		return err
	}
	if w, ok := r.(*request); ok {
		info.AppendClaims("sid", w.sid)
	}
	s.mu.Lock()
	inUserInfo := s.groupsInUserInfo
	s.mu.Unlock()
	if g := userByID(r.GetSubject()).Groups; len(g) > 0 && !inUserInfo {
		info.AppendClaims("groups", g)
	}
	return nil
}

// SetUserinfoFromToken is the userinfo answer: with the user's groups
// when they are kept out of the ID token.
func (s *store) SetUserinfoFromToken(ctx context.Context, info *zoidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	s.mu.Lock()
	inUserInfo := s.groupsInUserInfo
	s.mu.Unlock()
	if g := userByID(info.Subject).Groups; len(g) > 0 && inUserInfo {
		info.AppendClaims("groups", g)
	}
	return nil
}

// TerminateSession records an RP-initiated logout.
func (s *store) TerminateSession(ctx context.Context, userID, clientID string) error {
	s.mu.Lock()
	s.terminated = append(s.terminated, userID)
	s.mu.Unlock()
	return s.Storage.TerminateSession(ctx, userID, clientID)
}

// GetClientByClientID gives the client its post-logout redirect URIs.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client{Client: c, postLogout: s.postLogout}, nil
}

type client struct {
	op.Client
	postLogout []string
}

func (c client) PostLogoutRedirectURIs() []string { return c.postLogout }
