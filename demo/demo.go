// Package demo is a small SaaS-like app, "Acme Workspace", that shows
// lapse from the side of the people who use a SaaS: sign-in with demo
// users, a standard area (documents) and a sensitive one (billing) with
// short timeouts and a second factor, the expiry warning, cross-tab
// sign-out, the "Your sessions" page and an operator console that
// revokes sessions. `lapse demo` runs it on loopback; the browser tests
// of lapse run against it.
//
// It wires lapse together the way a Go app would: the [middleware]
// package guards its routes and issues the cookie, the [web] package
// serves the browser client and the end-user pages, and the [httpapi]
// package, mounted under /lapse/, serves the client's session routes
// (and the admin API, behind an API key).
package demo

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/feed"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/middleware"
	"github.com/lapsehq/lapse/sqlite"
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

// SecondFactor checks the second factor of the step-up page: the hook
// where a real factor plugs in. Its method has the shape of the totp
// package's Service.Check, so lapse's own TOTP drops in as it is. It
// must be safe for concurrent use.
type SecondFactor interface {
	// Check verifies code as the second factor of session s's subject and
	// returns the authentication method to record ("otp"). A wrong code
	// is an error whose lapse.ErrorMessage the page shows; an error with
	// code internal or store_unavailable is logged instead.
	Check(ctx context.Context, s *lapse.Session, code string) (amr string, err error)
}

// DemoCode is a stand-in second factor that accepts one fixed code for
// everybody. It proves nothing and exists only until a real factor
// (lapse's TOTP) replaces it; the step-up page says so. It also has a
// Hint method: a factor with one has its hint shown under the code field.
type DemoCode string

// Check accepts exactly the demo code.
func (c DemoCode) Check(_ context.Context, _ *lapse.Session, code string) (string, error) {
	if subtle.ConstantTimeCompare([]byte(code), []byte(c)) != 1 {
		return "", lapse.Errorf(lapse.CodeInvalid, "That code is not right. Check it and try again.")
	}
	return "otp", nil
}

// Hint tells the user the demo code, plainly.
func (c DemoCode) Hint() string {
	return fmt.Sprintf("Demo only: the code is %s for everybody. This stands in for a real authenticator app (TOTP), which will replace it.", string(c))
}

// Config configures an [App]. DataDir is required.
type Config struct {
	// DataDir holds the embedded store (lapse.db).
	DataDir string
	// Timeouts is the session policy; the zero value means
	// [DefaultTimeouts].
	Timeouts Timeouts
	// SecondFactor checks step-up codes; nil means DemoCode("123456").
	SecondFactor SecondFactor
	// APIKey opens the admin API under /lapse/v1; "" means a fresh key
	// (see [App.APIKey]).
	APIKey string
	// FeedEvery is how often the event feed reads the store's log; 0
	// means 50ms. SweepEvery is how often expiries are swept; 0 means
	// 200ms.
	FeedEvery, SweepEvery time.Duration
	// Clock tells the time; nil means the system clock.
	Clock lapse.Clock
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// App is the demo app. Build it with [New], serve [App.Handler], run
// [App.Run] for its background work, and [App.Close] it.
type App struct {
	m       *lapse.Manager
	store   *sqlite.Store
	events  *feed.Feed
	mw      *middleware.Middleware
	pages   *web.Pages
	api     *httpapi.Server
	factor  SecondFactor
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
	policy, err := cfg.Timeouts.Policy()
	if err != nil {
		return nil, err
	}
	a := &App{factor: cfg.SecondFactor, times: cfg.Timeouts, apiKey: cfg.APIKey, log: cfg.Logger, sweep: cfg.SweepEvery, notes: map[string]string{}}
	if a.factor == nil {
		a.factor = DemoCode("123456")
	}
	if a.apiKey == "" {
		a.apiKey = lapse.NewAPIKey()
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.store, err = sqlite.Open(filepath.Join(cfg.DataDir, "lapse.db"))
	if err != nil {
		return nil, err
	}
	a.m, err = lapse.New(lapse.Config{Store: a.store, Policy: policy, Clock: cfg.Clock})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.events = feed.New(a.store, cfg.FeedEvery)
	a.mw, err = middleware.New(middleware.Config{
		Manager: a.m,
		// Plain HTTP on loopback: no Secure, so no __Host- prefix.
		InsecureDevCookie: true,
		SignInURL:         "/signin",
		SignedOutURL:      "/signed-out",
		StepUpURL:         "/stepup",
		Logger:            a.log,
	})
	if err != nil {
		a.store.Close()
		return nil, err
	}
	a.api, err = httpapi.New(httpapi.Config{
		Manager: a.m, Keys: httpapi.NewKeys(lapse.HashSecret(a.apiKey)), Logger: a.log,
		Events: a.events, SessionCookie: a.mw.CookieName(),
	})
	if err != nil {
		a.store.Close()
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
	})
	if err != nil {
		a.store.Close()
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

// Close closes the store.
func (a *App) Close() error { return a.store.Close() }
