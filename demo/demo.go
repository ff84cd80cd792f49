// Package demo is a small SaaS-like app, "Acme Workspace", that shows
// lapse from the side of the people who use a SaaS: sign-in with demo
// users, a standard area (documents) and a sensitive one (billing) with
// short timeouts and a second factor (lapse's TOTP, set up in any
// authenticator app), the expiry warning, cross-tab sign-out, the "Your
// sessions" page and an operator console that revokes sessions. `lapse
// demo` runs it on loopback; the browser tests of lapse run against it.
//
// It wires lapse together the way a Go app would: the [middleware]
// package guards its routes and issues the cookie, the [totp] and
// [passkey] packages check second factors, the [web] package serves the browser client
// and the end-user pages, and the [httpapi] package, mounted under
// /lapse/, serves the client's session routes (and the admin API,
// behind an API key).
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/feed"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/middleware"
	"github.com/lapsehq/lapse/passkey"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/totp"
	"github.com/lapsehq/lapse/web"
)

// User is a demo account. Its Email is the session's subject.
type User struct {
	Email    string
	Password string
	Name     string
	Role     string
	// Tier is the tier of the user's sessions: a session's timeouts are
	// fixed when it is created, so they follow who signs in.
	Tier string
	// Operator may use the operator console (/admin).
	Operator bool
}

// Users are the demo's accounts; every password is "demo".
var Users = []User{
	{Email: "ada@example.com", Password: "demo", Name: "Ada", Role: "member", Tier: "standard"},
	{Email: "ben@example.com", Password: "demo", Name: "Ben", Role: "billing admin", Tier: "sensitive"},
	{Email: "olga@example.com", Password: "demo", Name: "Olga", Role: "operator", Tier: "standard", Operator: true},
}

func userByEmail(email string) (User, bool) {
	for _, u := range Users {
		if u.Email == email {
			return u, true
		}
	}
	return User{}, false
}

// Timeouts are the demo's session policy: the standard tier (documents)
// and the sensitive tier (billing admins), and how recent an
// authentication the billing area needs.
type Timeouts struct {
	Idle, Absolute, Warn, RemindAfter               time.Duration // standard tier
	SensitiveIdle, SensitiveAbsolute, SensitiveWarn time.Duration // sensitive tier
	// AuthAge is the max_auth_age of the sensitive tier and of the
	// billing area: how long ago the second factor may have been given.
	AuthAge time.Duration
}

// DefaultTimeouts are short enough to see everything happen within a
// few minutes.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Idle: 2 * time.Minute, Absolute: time.Hour, Warn: time.Minute, RemindAfter: 20 * time.Minute,
		SensitiveIdle: time.Minute, SensitiveAbsolute: 15 * time.Minute, SensitiveWarn: 30 * time.Second,
		AuthAge: 5 * time.Minute,
	}
}

// Policy returns the validated policy of t, or the policy's errors.
func (t Timeouts) Policy() (*lapse.Policy, error) {
	p := &lapse.Policy{
		DefaultTier: "standard",
		Tiers: map[string]lapse.Tier{
			"standard": {IdleTimeout: t.Idle, AbsoluteTimeout: t.Absolute, WarnBefore: t.Warn, RemindAfter: t.RemindAfter},
			"sensitive": {IdleTimeout: t.SensitiveIdle, AbsoluteTimeout: t.SensitiveAbsolute, WarnBefore: t.SensitiveWarn,
				RequireAAL: 2, MaxAuthAge: t.AuthAge, MaxSessions: 3, RemindAfter: t.RemindAfter},
		},
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// policy returns the policy of cfg's timeouts, its tiers bound to
// devices when bound.
func (cfg *Config) policy(bound bool) (*lapse.Policy, error) {
	p, err := cfg.Timeouts.Policy()
	if err != nil || !bound {
		return p, err
	}
	return bindDevices(p, cfg.DeviceBinding, cfg.BoundCookieLifetime)
}

// bindDevices returns p with every tier bound to devices in mode, its
// bound cookie living lifetime (0: the default), validated.
func bindDevices(p *lapse.Policy, mode lapse.DeviceBindingMode, lifetime time.Duration) (*lapse.Policy, error) {
	for name, t := range p.Tiers {
		t.DeviceBinding, t.BoundCookieLifetime = mode, lifetime
		p.Tiers[name] = t
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// RecentAuth is how recent a sign-in (or step-up) must be to set up a
// second factor, and how recent an AAL2 step-up must be to remove one
// (ASVS 5.0 7.5.1).
const RecentAuth = 15 * time.Minute

// issuer names the demo in authenticator apps.
const issuer = "Acme Workspace"

// Store is what the demo needs of a store: its sessions, and its events
// for the browser's event streams.
type Store interface {
	lapse.Store
	lapse.EventLog
}

// Config configures an [App]. DataDir is required.
type Config struct {
	// DataDir holds the embedded store (lapse.db) and the factor key.
	DataDir string
	// Store keeps the sessions; nil means the embedded SQLite store in
	// DataDir. The app does not close a store given here. Unless
	// SecondFactor is set, it must also keep factors ([lapse.FactorStore]).
	Store Store
	// Timeouts is the session policy; the zero value means
	// [DefaultTimeouts].
	Timeouts Timeouts
	// SecondFactor enrols users in a second factor and checks their
	// step-up codes; nil means lapse's TOTP (package totp) over the
	// demo's store, its secrets sealed with a key kept in
	// DataDir/factor.key (made, readable by the owner only, on first
	// use). It is also the factor service of the HTTP API under /lapse/.
	SecondFactor lapse.FactorService
	// APIKey opens the admin API under /lapse/v1; "" means a fresh key
	// (see [App.APIKey]).
	APIKey string
	// FeedEvery is how often the event feed reads the store's log; 0
	// means 50ms. SweepEvery is how often expiries are swept; 0 means
	// 200ms.
	FeedEvery, SweepEvery time.Duration
	// Origin is where browsers reach the demo, such as
	// "http://localhost:8090": passkeys are offered for it (relying party
	// localhost). "" leaves passkeys off. Browsers refuse passkeys on an
	// IP address, so it must be localhost, not 127.0.0.1.
	Origin string
	// DeviceBinding binds the sessions of both tiers to the browser's
	// device key (DBSC) with this mode; "" or off leaves it off. Browsers
	// register device-bound sessions only over HTTPS, so with it the
	// session cookie is Secure (__Host-lapse) and the caller serves the
	// app over TLS. BoundCookieLifetime is the bound cookie's lifetime; 0
	// means the default.
	DeviceBinding       lapse.DeviceBindingMode
	BoundCookieLifetime time.Duration
	// Clock tells the time; nil means the system clock.
	Clock lapse.Clock
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// App is the demo app. Build it with [New], serve [App.Handler], run
// [App.Run] for its background work, and [App.Close] it.
type App struct {
	m       *lapse.Manager
	store   Store
	own     bool // Close closes store
	events  *feed.Feed
	mw      *middleware.Middleware
	pages   *web.Pages
	api     *httpapi.Server
	factor  lapse.FactorService
	keys    lapse.PasskeyService // nil without Config.Origin
	times   Timeouts
	apiKey  string
	log     *slog.Logger
	sweep   time.Duration
	handler http.Handler
	tpl     *template.Template

	mu    sync.Mutex
	notes map[string]string // subject + document id -> text
}

// New builds the app over a store in cfg.DataDir.
func New(cfg Config) (*App, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("demo: Config.DataDir is required")
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	bound := cfg.DeviceBinding != "" && cfg.DeviceBinding != lapse.DeviceBindingOff
	policy, err := cfg.policy(bound)
	if err != nil {
		return nil, err
	}
	a := &App{factor: cfg.SecondFactor, times: cfg.Timeouts, apiKey: cfg.APIKey, log: cfg.Logger, sweep: cfg.SweepEvery, notes: map[string]string{}}
	if a.apiKey == "" {
		a.apiKey = lapse.NewAPIKey()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.store = cfg.Store; a.store == nil {
		if a.store, err = sqlite.Open(filepath.Join(cfg.DataDir, "lapse.db")); err != nil {
			return nil, err
		}
		a.own = true
	}
	a.m, err = lapse.New(lapse.Config{Store: a.store, Policy: policy, Clock: cfg.Clock})
	if err != nil {
		a.Close()
		return nil, err
	}
	if err := a.secondFactors(cfg); err != nil {
		a.Close()
		return nil, err
	}
	a.events = feed.New(a.store, cfg.FeedEvery)
	a.mw, err = middleware.New(middleware.Config{
		Manager: a.m,
		// Plain HTTP on loopback: no Secure, so no __Host- prefix;
		// device binding needs HTTPS and so a Secure cookie.
		InsecureDevCookie: !bound,
		DeviceBinding:     bound,
		SignInURL:         "/signin",
		SignedOutURL:      "/signed-out",
		StepUpURL:         "/stepup",
		Logger:            a.log,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.api, err = httpapi.New(httpapi.Config{
		Manager: a.m, Keys: httpapi.NewKeys(lapse.HashSecret(a.apiKey)), Logger: a.log,
		Events: a.events, SessionCookie: a.mw.CookieName(), Factors: a.factor,
		Passkeys: a.keys, StepUp: a.mw.StepUp, Device: a.mw.Device().CheckFunc(),
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.tpl = a.templates()
	a.pages, err = web.NewPages(web.Config{
		Manager:    a.m,
		Session:    func(r *http.Request) (lapse.Session, bool) { return middleware.Session(r.Context()) },
		CSRFToken:  func(r *http.Request) string { return middleware.CSRFToken(r.Context()) },
		CSRFField:  middleware.CSRFField,
		SignOutURL: "/signout",
		SignInURL:  "/signin",
		Layout:     a.layout(),
		Logger:     a.log,
		Passkeys:   a.keys,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.handler = a.routes()
	return a, nil
}

// Handler returns the app's HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// Manager returns the app's session manager.
func (a *App) Manager() *lapse.Manager { return a.m }

// APIKey returns the key of the admin API under /lapse/v1.
func (a *App) APIKey() string { return a.apiKey }

// Run runs the sweeper (expiries, warnings) and the event feed (the
// browser's event streams) until ctx is done.
func (a *App) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.m.Run(ctx, lapse.RunOptions{SweepEvery: a.sweep, OnError: func(err error) { a.log.Error("sweep", "err", err) }})
	}()
	go func() {
		defer wg.Done()
		a.events.Run(ctx)
	}()
	wg.Wait()
	return nil
}

// Ready is closed once the event feed follows the store, so that
// events recorded after it reach the browsers.
func (a *App) Ready() <-chan struct{} { return a.events.Ready() }

// Close closes the store, if the app opened it.
func (a *App) Close() error {
	if !a.own {
		return nil
	}
	return a.store.Close()
}

// secondFactors sets up the app's factors: lapse's TOTP unless cfg gives
// another, and passkeys for cfg.Origin.
func (a *App) secondFactors(cfg Config) error {
	if a.factor == nil {
		key, err := factorKey(cfg.DataDir)
		if err != nil {
			return err
		}
		if a.factor, err = totp.New(totp.Config{Manager: a.m, Key: key, Issuer: issuer, RecentAuth: RecentAuth}); err != nil {
			return err
		}
	}
	var err error
	a.keys, err = passkeys(a.m, cfg.Origin)
	return err
}

// passkeys returns the passkey factor for origin, over m's store; none
// without an origin, or over a store that keeps no factors.
func passkeys(m *lapse.Manager, origin string) (lapse.PasskeyService, error) {
	if _, ok := m.Store().(lapse.FactorStore); !ok || origin == "" {
		return nil, nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return nil, fmt.Errorf("demo: Config.Origin %q: %w", origin, err)
	}
	svc, err := passkey.New(passkey.Config{Manager: m, RPID: u.Hostname(), RPName: issuer, Origins: []string{origin}, RecentAuth: RecentAuth})
	if err != nil {
		return nil, fmt.Errorf("demo: Config.Origin %q: %w", origin, err)
	}
	return svc, nil
}

// factorKeyFile keeps the key that seals the TOTP secrets, in the data
// directory and in the format of lapse serve's own factor.key, so that a
// demo restarted on the same directory still opens them.
const factorKeyFile = "factor.key"

// factorKey returns the key in dir's factorKeyFile, making a random one
// (readable by the owner only) if there is none.
func factorKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, factorKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != totp.KeySize {
			return nil, fmt.Errorf("demo: %s does not hold a %d-byte key in base64", path, totp.KeySize)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, totp.KeySize)
	rand.Read(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, err
	}
	return k, nil
}
