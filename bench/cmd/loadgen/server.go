package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/metrics"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/redis"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/web"
	goredis "github.com/redis/go-redis/v9"
)

// feedWait bounds how long a lapse-redis or lapse-postgres server waits
// for its change feed to go live before it gives up.
const feedWait = 15 * time.Second

// runServer serves name on a loopback port, prints "addr HOST:PORT" and
// answers commands on stdin until it ends:
//
//	stats             -> ok CPU_NS MALLOCS FEED_LOST
//	profile PREFIX    -> ok   (starts PREFIX.cpu.pprof)
//	stopprofile       -> ok   (ends it, writes PREFIX.allocs.pprof)
//
// A server on a shared store with a cache prints its address only once
// its change feed is live, so that every measured verify may use the
// cache.
func runServer(name string, cacheSize int, cacheMemory int64) error {
	signal.Ignore(os.Interrupt) // loadgen's ^C reaches us too; wait for our stdin to end
	var (
		handler http.Handler
		n       *node
	)
	switch name {
	case "bare":
		handler = bareHandler()
	case "lapse", "lapse-redis", "lapse-postgres":
		var err error
		if n, err = newNode(name, os.Getenv(keyEnv), cacheSize, cacheMemory); err != nil {
			return err
		}
		defer n.close()
		handler = n.handler
	default:
		return fmt.Errorf("unknown server %q", name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The settings of lapse serve, for every server.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.NewTextHandler(os.Stderr, nil), slog.LevelWarn),
	}
	go srv.Serve(ln)
	fmt.Printf("addr %s\n", ln.Addr())

	var prefix string
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var lost int64
			if n != nil && n.feed != nil {
				lost = n.feed.lost.Load()
			}
			fmt.Printf("ok %d %d %d\n", cpuTime(), ms.Mallocs, lost)
		case "profile":
			prefix = arg
			f, err := os.Create(prefix + ".cpu.pprof")
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			fmt.Println("ok")
		case "stopprofile":
			pprof.StopCPUProfile()
			if f, err := os.Create(prefix + ".allocs.pprof"); err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			fmt.Println("ok")
		default:
			fmt.Printf("error unknown command %q\n", cmd)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// bareHandler is the baseline: the least a JSON verify endpoint does in
// net/http, with no authentication, store or policy.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions/verify", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Token == "" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Valid  bool `json:"valid"`
			Length int  `json:"length"`
		}{true, len(req.Token)})
	})
	return mux
}

// store is what a lapse node needs of its store.
type store interface {
	lapse.Store
	Close() error
}

// node is lapse wired as cmd/lapse's serve wires it: the API, the
// metrics (behind the API key) and the browser assets on one mux, the
// built-in policy and its defaults, the system clock, and Manager.Run
// sweeping (and, on a shared store, following the change feed). What serve adds
// beyond that is not on the verify path and not started: the event feed,
// the webhook dispatcher and the built-in second factors.
type node struct {
	handler http.Handler
	feed    *feedWatch // nil on SQLite
	close   func()
}

// newNode starts a lapse node of kind "lapse" (SQLite in a temporary
// directory), "lapse-redis" or "lapse-postgres" (the store at
// $LOADGEN_STORE_URL), with key as its one API key.
// serverMaxBatch is the -max-batch of a server process.
var serverMaxBatch int

func newNode(kind, key string, cacheSize int, cacheMemory int64) (*node, error) {
	if key == "" {
		return nil, errors.New(keyEnv + " is not set")
	}
	n := &node{}
	var (
		st   store
		undo []func()
	)
	n.close = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		undo = nil
	}
	fail := func(err error) (*node, error) {
		n.close()
		return nil, err
	}
	switch kind {
	case "lapse":
		dir := os.Getenv(dataDirEnv) // kept for a restart
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "lapse-loadgen-*"); err != nil {
				return nil, err
			}
			undo = append(undo, func() { os.RemoveAll(dir) })
		}
		sq, err := sqlite.OpenOptions(filepath.Join(dir, "lapse.db"), sqlite.Options{MaxBatch: serverMaxBatch})
		if err != nil {
			return fail(err)
		}
		st = sq
	case "lapse-redis", "lapse-postgres":
		url := os.Getenv(storeEnv)
		if url == "" {
			return nil, errors.New(storeEnv + " is not set")
		}
		var err error
		n.feed = &feedWatch{live: make(chan struct{})}
		if st, err = openShared(kind, url, n.feed); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown lapse server %q", kind)
	}
	undo = append(undo, func() { st.Close() })

	cfg := config.Default()
	cfg.Policy.Tiers[activeTier] = lapse.Tier{IdleTimeout: activeIdle, AbsoluteTimeout: 12 * time.Hour, WarnBefore: activeWarn}
	cfg.Policy.Tiers[cycleTier] = lapse.Tier{IdleTimeout: cycleIdle, AbsoluteTimeout: 12 * time.Hour, WarnBefore: cycleWarn}
	if err := cfg.Policy.Validate(); err != nil {
		return fail(err)
	}
	clock := lapse.SystemClock{}
	reg := metrics.New(st, clock, cfg.Policy.TierNames())
	m, err := lapse.New(lapse.Config{Store: st, Policy: cfg.Policy, Clock: clock, Observer: reg, CacheSize: cacheSize, CacheMemory: cacheMemory})
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	api, err := httpapi.New(httpapi.Config{Manager: m, Keys: httpapi.NewKeys(lapse.HashSecret(key)), Logger: log})
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	mux.Handle("GET /metrics", api.RequireKey(lapse.ScopeMetricsRead, reg.Handler()))
	mux.Handle("GET /web/", http.StripPrefix("/web", web.Assets()))
	n.handler = mux

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, lapse.RunOptions{SweepEvery: cfg.SweepInterval, Retention: cfg.Retention,
			OnError: func(err error) { log.Error("sweep", "err", err) }})
	}()
	undo = append(undo, func() { stop(); <-done })

	if n.feed != nil && cacheSize >= 0 {
		select {
		case <-n.feed.live:
		case <-time.After(feedWait):
			return fail(fmt.Errorf("the change feed did not go live within %v", feedWait))
		}
	}
	return n, nil
}

// openShared opens the Redis or PostgreSQL store at url, its change feed
// watched by w.
func openShared(kind, url string, w *feedWatch) (store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if kind == "lapse-redis" {
		goredis.SetLogger(quietRedis{}) // as serve does: lapse reports store errors itself
		rd, err := redis.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return &redisFeed{rd, w}, nil
	}
	pg, err := postgres.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	return &postgresFeed{pg, w}, nil
}

// feedWatch notes when a store's change feed first vouches for the
// manager's cache (a mark comes back: the cache serves only from then on)
// and how often it is lost.
type feedWatch struct {
	live chan struct{} // closed when the first mark comes back
	once sync.Once
	lost atomic.Int64
}

// watch runs changes, a store's Changes, for the manager's fn.
func (f *feedWatch) watch(ctx context.Context, fn func(lapse.Change), changes func(context.Context, func(lapse.Change)) error) error {
	err := changes(ctx, func(c lapse.Change) {
		fn(c)
		if c.Mark != 0 { // a mark came back: the manager serves from its cache
			f.once.Do(func() { close(f.live) })
		}
	})
	if ctx.Err() == nil {
		f.lost.Add(1)
	}
	return err
}

// redisFeed and postgresFeed are the stores with their feeds watched;
// every other method, and so every optional interface the manager looks
// for, is the store's own.
type (
	redisFeed struct {
		*redis.Store
		w *feedWatch
	}
	postgresFeed struct {
		*postgres.Store
		w *feedWatch
	}
)

var (
	_ lapse.ExpiryIndex = (*redisFeed)(nil)
	_ lapse.ChangeFeed  = (*redisFeed)(nil)
	_ lapse.ExpiryIndex = (*postgresFeed)(nil)
	_ lapse.ChangeFeed  = (*postgresFeed)(nil)
)

func (f *redisFeed) Changes(ctx context.Context, fn func(lapse.Change)) error {
	return f.w.watch(ctx, fn, f.Store.Changes)
}

func (f *postgresFeed) Changes(ctx context.Context, fn func(lapse.Change)) error {
	return f.w.watch(ctx, fn, f.Store.Changes)
}

// quietRedis keeps go-redis from printing to stderr on its own.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
