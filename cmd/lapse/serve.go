package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/compliance"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/feed"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/metrics"
	"github.com/lapsehq/lapse/throttle"
	"github.com/lapsehq/lapse/web"
	"github.com/lapsehq/lapse/webhook"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (default: built-in tiers, embedded store)")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:8080)")
	dataDir := fs.String("data-dir", "", "`directory` for the embedded store and the admin key's hash (default ./lapse-data)")
	store := fs.String("store", "", "where sessions live: sqlite (default, in the data directory) a redis://, rediss:// or redis+cluster:// URL, or a postgres:// URL")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintf(stderr, "lapse: invalid configuration, not starting:\n%s\n", indent(err.Error()))
			return 2
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *store != "" {
		cfg.Store = lapse.SecretURL(*store)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, cfg, stdout, log); err != nil {
		fmt.Fprintf(stderr, "lapse: %v\n", err)
		return 1
	}
	return 0
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// serve runs lapse until ctx is done.
func serve(ctx context.Context, cfg *config.File, stdout io.Writer, log *slog.Logger) error {
	if err := compliance.Enforce(cfg.Policy); err != nil {
		return fmt.Errorf("the policy breaks a compliance profile its tiers require, not starting:\n%s", indent(err.Error()))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	keyHash, err := adminKey(cfg.DataDir, stdout)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg.Store, cfg.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	clock := lapse.SystemClock{}
	reg := metrics.New(store, clock, cfg.Policy.TierNames())
	guessing := throttle.NewGuessing(throttle.GuessConfig{PerSource: cfg.TokenGuessing.PerSource,
		Overall: cfg.TokenGuessing.Overall, BlockFor: cfg.TokenGuessing.BlockFor, Clock: clock})
	reg.CountGuessing(guessing)
	m, err := lapse.New(lapse.Config{Store: store, Policy: cfg.Policy, Clock: clock, Observer: reg, PropagationBound: cfg.PropagationBound,
		CacheMemory: cfg.CacheMemory, Guessing: guessing})
	if err != nil {
		return err
	}
	reg.WatchCache(m)
	endpoints, err := webhookEndpoints(cfg)
	if err != nil {
		return err
	}
	events := feed.New(store, 0)
	dispatcher := webhook.New(webhook.Config{
		Endpoints: endpoints, Log: store, Queue: store, Clock: clock, AllowNetworks: cfg.WebhookAllowNetworks,
		RetryBase: cfg.WebhookRetry.Base, RetryMax: cfg.WebhookRetry.Max, MaxAttempts: cfg.WebhookRetry.Attempts,
		OnError: func(err error) { log.Error("webhook delivery", "err", err) },
	})
	factors, err := builtInFactors(cfg, m, log)
	if err != nil {
		return err
	}
	keys, err := passkeys(cfg, m)
	if err != nil {
		return err
	}
	// One throttle for the API and the console's sign-in: both take the
	// admin key, so a source's wrong keys count together.
	limiter := throttle.New(throttle.Config{Clock: clock})
	reg.CountRejections(limiter)
	// The bootstrap key (first start's, or LAPSE_API_KEY) is a stored key
	// with every scope, until revoked like any other.
	ring, err := lapse.NewKeyring(m)
	if err != nil {
		return err
	}
	if err := ring.Bootstrap(ctx, keyHash); err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{Manager: m, Keys: httpapi.NewKeys(), Keyring: ring, Logger: log, Events: events, Factors: factors,
		Passkeys: keys, Throttle: limiter, TrustedProxies: cfg.TrustedProxies,
		StreamsPerSession: cfg.EventStreams.PerSession, StreamsPerNode: cfg.EventStreams.PerNode})
	if err != nil {
		return err
	}
	reg.CountStreams(api)
	mux := http.NewServeMux()
	api.Register(mux)
	mux.Handle("GET /metrics", api.RequireKey(lapse.ScopeMetricsRead, noStore(reg.Handler())))
	mux.Handle("GET /web/", http.StripPrefix("/web", web.Assets()))
	idp, err := consoleIdP(cfg, m, log)
	if err != nil {
		return err
	}
	cc := console.Config{Manager: m, Keys: consoleKey(ring), Observer: reg, Metrics: reg.Registry(), Log: log,
		Throttle: limiter, TrustedProxies: cfg.TrustedProxies, IdP: idp, Keyring: ring}
	// Named operators (lapse operators create) sign in with their TOTP
	// factor, sealed with the same key as the platform's.
	if opStore, ok := store.(lapse.OperatorStore); ok && factors != nil {
		cc.Operators, cc.Factors = opStore, factors
	}
	ops, err := console.New(cc)
	if err != nil {
		return err
	}
	mux.Handle("/console/", ops)
	g, err := mountGateway(mux, cfg, m, ring, events, factors, keys, log)
	if err != nil {
		return err
	}
	if err := mountOIDC(mux, cfg, m, g, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	// Requests, server-sent-event streams above all, end when shutdown
	// starts; otherwise an open stream would hold Shutdown to its timeout.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		log.Warn("listening beyond loopback over plain HTTP: put TLS in front of lapse", "addr", ln.Addr().String())
	}
	// Every event from the first request on reaches the webhooks.
	if err := dispatcher.Start(ctx); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	// Background work: the sweeper, the event feed and webhook delivery.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{
		func(ctx context.Context) error {
			return m.Run(ctx, lapse.RunOptions{SweepEvery: cfg.SweepInterval, Retention: cfg.Retention,
				OnError: func(err error) { log.Error("sweep", "err", err) }})
		},
		events.Run,
		dispatcher.Run,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); run(bg) }()
	}
	defer func() { stopBG(); wg.Wait() }()

	// The store URL prints redacted (lapse.SecretURL).
	fmt.Fprintf(stdout, "lapse listening on http://%s (store %s, data in %s)\n", ln.Addr(), cmp.Or(cfg.Store, "sqlite"), cfg.DataDir)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.RegisterOnShutdown(endRequests)
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// consoleKey returns the identity a key typed at the console's sign-in
// opens the console as: a usable key with the console scope and no
// tenant signs in as an admin named after the key.
func consoleKey(ring *lapse.Keyring) func(context.Context, string) (console.Identity, bool) {
	return func(ctx context.Context, key string) (console.Identity, bool) {
		k, ok, err := ring.Authenticate(ctx, key)
		if err != nil || !ok || !k.Has(lapse.ScopeConsole) || k.Tenant != "" {
			return console.Identity{}, false
		}
		return console.Identity{Actor: k.Actor(), Name: k.Name, Role: console.RoleAdmin}, true
	}
}

// noStore marks h's answers as not to be cached: metrics change with
// every scrape and are an operator's to see.
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// webhookEndpoints turns the configured webhooks into endpoints, reading
// secrets from the environment where the config names a variable.
func webhookEndpoints(cfg *config.File) ([]webhook.Endpoint, error) {
	var out []webhook.Endpoint
	for _, w := range cfg.Webhooks {
		secret, where := w.Secret, w.Key+".secret"
		if w.SecretEnv != "" {
			secret, where = os.Getenv(w.SecretEnv), w.Key+".secret_env: $"+w.SecretEnv
		}
		key, err := webhook.ParseSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", cfg.Path, where, err)
		}
		out = append(out, webhook.Endpoint{Name: w.Name, URL: w.URL, Key: key, Types: w.Events})
	}
	return out, nil
}

// adminKey returns the hash of the admin API key. LAPSE_API_KEY sets the
// key; otherwise the hash kept in the data directory is used, and on the
// first start a key is generated, printed once, and only its hash kept.
func adminKey(dataDir string, stdout io.Writer) (lapse.TokenHash, error) {
	if k := os.Getenv("LAPSE_API_KEY"); k != "" {
		if len(k) < 32 {
			return lapse.TokenHash{}, errors.New("LAPSE_API_KEY must be at least 32 characters; generate one with 'openssl rand -hex 32'")
		}
		return lapse.HashSecret(k), nil
	}
	path := filepath.Join(dataDir, "admin-key.sha256")
	if b, err := os.ReadFile(path); err == nil {
		var h lapse.TokenHash
		if n, err := hex.Decode(h[:], []byte(strings.TrimSpace(string(b)))); err != nil || n != len(h) {
			return h, fmt.Errorf("%s: not a SHA-256 in hex; delete it to generate a new admin key", path)
		}
		return h, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return lapse.TokenHash{}, err
	}
	key := lapse.NewAPIKey()
	h := lapse.HashSecret(key)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(h[:])+"\n"), 0o600); err != nil {
		return h, err
	}
	fmt.Fprintf(stdout, "\nGenerated an admin API key. It is shown this once; lapse keeps only its hash in %s:\n\n    %s\n\n", path, key)
	return h, nil
}
