// Command loadgen measures lapse's POST /v1/sessions/verify over HTTP
// against a bare net/http handler on the same machine in the same run,
// then the rate of session creation over HTTP (POST /v1/sessions).
//
// It starts each server on loopback in its own child process (the
// loadgen binary run again with -serve), so that the client's work is
// not counted in a server's CPU time and the servers can be given their
// own GOMAXPROCS. -servers picks them, in this order:
//
//   - bare: an http.ServeMux whose handler decodes a small JSON body and
//     writes a small JSON reply: the cost of net/http and encoding/json
//     alone, the baseline.
//   - lapse: the lapse API wired as lapse serve wires it (httpapi and
//     metrics on one mux, a SQLite store in a temporary directory, the
//     built-in policy, the system clock, Manager.Run sweeping), with one
//     API key.
//   - lapse-redis: the same on the Redis store, on a private redis-server
//     that loadgen starts (a free loopback port, a temporary directory, no
//     persistence; killed at the end). Manager.Run follows the Redis
//     change feed, and the server takes requests only once the feed is
//     live: before that its verify cache is not used.
//   - lapse-postgres: the same on the PostgreSQL store, on a private
//     PostgreSQL that loadgen starts (initdb in a temporary directory, a
//     free loopback port, fsync off; stopped at the end), following its
//     LISTEN/NOTIFY change feed.
//   - lapse-single: lapse with the SQLite store's group commit off
//     (sqlite.Options.MaxBatch 1): every create its own transaction and
//     fsync, the baseline of the creation figures.
//   - lapse-nocache, lapse-redis-nocache, lapse-postgres-nocache: the
//     same with the verify cache disabled (CacheSize -1), so every verify
//     reads the store: the cost of a cache miss, which is also what a
//     shared-store node pays while its change feed is down. The -nocache
//     server of a shared store shares its store and sessions, as a second
//     node would; each SQLite server has its own database.
//
// It creates -sessions sessions in each store, then drives verify with
// -concurrency keep-alive connections for -duration against each server
// in turn, -rounds times, alternating the order, and prints requests/s,
// latency percentiles, the servers' CPU time and allocations per request
// (and the store server's CPU time per request, redis-server's or
// PostgreSQL's, for the servers on a shared store), and
// each server's ratio to bare. The client is a minimal HTTP/1.1 client
// on raw connections, much lighter than net/http's, since on a small
// machine it competes with the servers for the same cores.
//
// With -propagation N it measures revocation propagation instead: two
// nodes A and B on one private Redis, then on one private PostgreSQL
// (-propagation-stores); for each of N sessions
// it verifies the session on B (so B caches it), revokes it on A with
// POST /v1/sessions/revoke and polls B's verify until it answers 401
// session_revoked; first with the machine otherwise idle, then while
// -concurrency connections load B with verifies.
//
// With -touch-duration D it then measures activity writes over HTTP on
// each lapse server (of the servers loadgen starts): it gives the
// servers' policy a tier, loadgen-active, whose touch interval is 1 s,
// creates 20,000 sessions of it and verifies them for D with
// -concurrency connections, each session only 1.05 s after its last
// reply, so that every verify writes the session's activity (durably,
// on SQLite, before it answers). It prints the writes/s (the verifies
// whose reply's last_active_at moved) beside the verifies/s; compare
// lapse with lapse-single for group commit's share.
//
// With -url and -key it measures an external lapse instead (verify and
// create only; there is no baseline to compare against).
//
// Usage:
//
//	go run ./bench/cmd/loadgen [-servers bare,lapse,lapse-redis,lapse-postgres] [-duration 5s] [-rounds 3] [-concurrency 32] [-sessions 1000]
//	go run ./bench/cmd/loadgen -propagation 1000
//	go run ./bench/cmd/loadgen -url http://127.0.0.1:8080 -key lpk_...
//
// loadgen uses the standard library, lapse's own packages and, for the
// Redis and PostgreSQL servers, go-redis and pgx as lapse serve does.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
)

// Environment of the server processes.
const (
	keyEnv   = "LOADGEN_API_KEY"   // the API key
	storeEnv = "LOADGEN_STORE_URL" // the shared store of the lapse-redis and lapse-postgres servers
)

// Limits keep a run bounded in time and size.
const (
	maxSessions    = 100_000
	maxConcurrency = 1024
	maxRounds      = 10
	maxDuration    = 60 * time.Second
)

// A kind is a server loadgen can start.
type kind struct {
	serve   string // the -serve argument: bare, lapse, lapse-redis or lapse-postgres
	noCache bool   // CacheSize -1
	single  bool   // SQLite with group commit off (MaxBatch 1)
}

var kinds = map[string]kind{
	"bare":                   {serve: "bare"},
	"lapse":                  {serve: "lapse"},
	"lapse-nocache":          {serve: "lapse", noCache: true},
	"lapse-single":           {serve: "lapse", single: true},
	"lapse-redis":            {serve: "lapse-redis"},
	"lapse-redis-nocache":    {serve: "lapse-redis", noCache: true},
	"lapse-postgres":         {serve: "lapse-postgres"},
	"lapse-postgres-nocache": {serve: "lapse-postgres", noCache: true},
}

// kindOrder is the order of the servers in reports, whatever the order
// of -servers.
var kindOrder = []string{"bare", "lapse", "lapse-nocache", "lapse-single", "lapse-redis", "lapse-redis-nocache", "lapse-postgres", "lapse-postgres-nocache"}

type options struct {
	duration, warmup, createDuration time.Duration
	touchDuration                    time.Duration
	rounds, concurrency, sessions    int
	serverProcs, clientProcs         int
	cacheSize                        int
	servers                          []string
	propagation                      int
	propagationStores                []string
	profileDir                       string
	url, key                         string
	scale, scaleAt                   int
	scaleNoTouch                     bool
	cacheMemory                      int64
}

func main() {
	var o options
	serve := flag.String("serve", "", "internal: run as the `server` (bare, lapse, lapse-redis or lapse-postgres) and take commands on stdin")
	servers := flag.String("servers", "bare,lapse,lapse-redis,lapse-postgres", "comma-separated `list` of the servers to compare: "+strings.Join(kindOrder, ", "))
	propStores := flag.String("propagation-stores", "redis,postgres", "comma-separated `list` of the shared stores -propagation measures: redis, postgres")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one measured round against one server")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load against each server before the first round")
	flag.IntVar(&o.rounds, "rounds", 3, "measured rounds per server, interleaved")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent keep-alive client connections")
	flag.IntVar(&o.sessions, "sessions", 1000, "sessions to create and verify in turn")
	flag.DurationVar(&o.createDuration, "create-duration", 3*time.Second, "length of each session-creation measurement (0 skips it)")
	flag.DurationVar(&o.touchDuration, "touch-duration", 0, "length of each activity-write measurement: verifies that each write the session's activity (0 skips it)")
	flag.IntVar(&o.serverProcs, "server-procs", 0, "GOMAXPROCS of each server process (0: the Go default)")
	flag.IntVar(&o.clientProcs, "client-procs", 0, "GOMAXPROCS of the client (0: the Go default)")
	flag.IntVar(&o.cacheSize, "cache-size", 0, "verify cache size of lapse and lapse-redis, as lapse.Config.CacheSize (0: the default; -1 disables it)")
	flag.IntVar(&o.propagation, "propagation", 0, "measure revocation propagation between two nodes on a shared store over `N` sessions per phase, instead of throughput")
	flag.StringVar(&o.profileDir, "profile-dir", "", "write the servers' CPU and allocation profiles over the verify rounds to `dir`")
	flag.IntVar(&o.scale, "scale", 0, "create `N` sessions in one lapse server on SQLite and compare verify at -scale-at sessions and at N, instead of the comparison of servers")
	flag.IntVar(&o.scaleAt, "scale-at", 10_000, "with -scale, the sessions of the first verify measurements, and as many more of a tier with a 300 ms touch interval for the one that writes activity (verify must take from 300 ms to under 5.6 s to come round to them)")
	flag.BoolVar(&o.scaleNoTouch, "scale-no-touch", false, "with -scale, leave out the measurements whose verifies write activity, at -scale-at sessions and at -scale")
	flag.Int64Var(&o.cacheMemory, "cache-memory", 0, "verify cache bound of lapse in `bytes`, as lapse.Config.CacheMemory (0: -cache-size applies); -scale uses config.DefaultCacheMemory when 0")
	flag.IntVar(&serverMaxBatch, "max-batch", 0, "internal: sqlite.Options.MaxBatch of a lapse server")
	flag.StringVar(&o.url, "url", "", "measure the external lapse at this base `URL` instead of starting servers")
	flag.StringVar(&o.key, "key", "", "API key of the external lapse (with -url)")
	flag.Parse()

	if *serve != "" {
		if err := runServer(*serve, o.cacheSize, o.cacheMemory); err != nil {
			fmt.Fprintf(os.Stderr, "loadgen server %s: %v\n", *serve, err)
			os.Exit(1)
		}
		return
	}
	o.servers, o.propagationStores = list(*servers), list(*propStores)
	if err := o.check(); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(2)
	}
	if o.clientProcs > 0 {
		runtime.GOMAXPROCS(o.clientProcs)
	}
	// On ^C or SIGTERM, stop the store servers this process started (the
	// lapse servers stop by themselves when their stdin closes).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		cleanup.run()
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", s)
		os.Exit(130)
	}()
	var err error
	switch {
	case o.propagation > 0:
		err = runPropagation(o)
	case o.scale > 0:
		err = runScale(o)
	default:
		err = run(o)
	}
	cleanup.run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case o.duration < 100*time.Millisecond || o.duration > maxDuration:
		return fmt.Errorf("-duration must be between 100ms and %v", maxDuration)
	case o.warmup < 0 || o.warmup > maxDuration:
		return fmt.Errorf("-warmup must be between 0 and %v", maxDuration)
	case o.createDuration < 0 || o.createDuration > maxDuration:
		return fmt.Errorf("-create-duration must be between 0 and %v", maxDuration)
	case o.touchDuration < 0 || o.touchDuration > maxDuration:
		return fmt.Errorf("-touch-duration must be between 0 and %v", maxDuration)
	case o.url != "" && o.touchDuration > 0:
		return errors.New("-touch-duration needs the tier loadgen gives the servers it starts; it cannot use -url")
	case o.rounds < 1 || o.rounds > maxRounds:
		return fmt.Errorf("-rounds must be between 1 and %d", maxRounds)
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return fmt.Errorf("-concurrency must be between 1 and %d", maxConcurrency)
	case o.sessions < 1 || o.sessions > maxSessions:
		return fmt.Errorf("-sessions must be between 1 and %d", maxSessions)
	case o.propagation < 0 || o.propagation > maxSessions:
		return fmt.Errorf("-propagation must be between 0 and %d", maxSessions)
	case o.serverProcs < 0 || o.clientProcs < 0:
		return errors.New("-server-procs and -client-procs must not be negative")
	case (o.url == "") != (o.key == ""):
		return errors.New("-url and -key go together")
	case o.url != "" && o.profileDir != "":
		return errors.New("-profile-dir profiles the servers loadgen starts; it cannot profile -url")
	case o.url != "" && o.propagation > 0:
		return errors.New("-propagation starts its own nodes; it cannot use -url")
	}
	for _, s := range o.propagationStores {
		if s != "redis" && s != "postgres" {
			return fmt.Errorf("-propagation-stores: unknown store %q (known: redis, postgres)", s)
		}
	}
	if o.url != "" || o.propagation > 0 {
		return nil
	}
	lapses := 0
	for _, s := range o.servers {
		if _, ok := kinds[s]; !ok {
			return fmt.Errorf("-servers: unknown server %q (known: %s)", s, strings.Join(kindOrder, ", "))
		}
		if s != "bare" {
			lapses++
		}
	}
	if lapses == 0 {
		return errors.New("-servers must name at least one lapse server")
	}
	return nil
}

// list splits a comma-separated list, without blanks or repeats.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// cleanup holds what must be undone when loadgen ends, also on a signal.
var cleanup cleanups

type cleanups struct {
	mu  sync.Mutex
	fns []func()
}

func (c *cleanups) add(fn func()) {
	c.mu.Lock()
	c.fns = append(c.fns, fn)
	c.mu.Unlock()
}

// run calls the functions added, last first, once.
func (c *cleanups) run() {
	c.mu.Lock()
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// run measures and prints the report.
func run(o options) error {
	fmt.Printf("loadgen: %d CPUs, client GOMAXPROCS %d, server GOMAXPROCS %s, %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), procsString(o.serverProcs), runtime.Version())
	fmt.Printf("verify: %d sessions, %d connections, rounds: %d x %v per server (warm-up %v)\n",
		o.sessions, o.concurrency, o.rounds, o.duration, o.warmup)
	fmt.Printf("load average at start: %s\n", loadavg())
	defer func() { fmt.Printf("\nload average at end: %s\n", loadavg()) }()

	var (
		targets []*target
		dbs     []dbServer // the shared stores' servers
	)
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-url %q is not an http or https URL", o.url)
		}
		t := &target{name: "lapse(url)", store: "url", addr: hostPort(u), host: u.Host, prefix: strings.TrimSuffix(u.Path, "/"), key: o.key}
		if u.Scheme == "https" {
			t.tls = &tls.Config{ServerName: u.Hostname()}
		}
		targets = []*target{t}
	} else {
		key := lapse.NewAPIKey()
		for _, name := range kindOrder {
			if !slices.Contains(o.servers, name) {
				continue
			}
			k := kinds[name]
			t := &target{name: name, kind: k, key: key, cacheSize: o.cacheSize}
			if k.noCache {
				t.cacheSize = -1
			}
			if k.serve == "lapse" {
				t.store = "sqlite:" + name // a database of its own
			} else if k.serve != "bare" {
				// One store server of each kind, shared like nodes share it.
				t.store = k.serve
				if t.db = sharedDB(dbs, k.serve); t.db == nil {
					var err error
					if t.db, err = startDB(k.serve); err != nil {
						return err
					}
					dbs = append(dbs, t.db)
				}
			}
			targets = append(targets, t)
		}
		for _, t := range targets {
			if err := t.start(o); err != nil {
				return err
			}
			cleanup.add(t.stop)
		}
	}
	fmt.Println()
	for _, t := range targets {
		t.dialAll(o.concurrency)
	}

	// Sessions to verify, in each store; bare gets the first store's.
	tokens := map[string][]string{}
	var first []string
	for _, t := range targets {
		if t.store == "" || tokens[t.store] != nil {
			continue
		}
		toks, st, err := t.createSessions(o.sessions, o.concurrency, "")
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Printf("created %d sessions in %s over HTTP with %d connections: %.0f sessions/s\n", len(toks), t.name, min(o.concurrency, o.sessions), st.rate())
		tokens[t.store] = toks
		if first == nil {
			first = toks
		}
	}
	fmt.Println()
	for _, t := range targets {
		toks := first
		if t.store != "" {
			toks = tokens[t.store]
		}
		t.verifyReqs = make([][]byte, len(toks))
		for i, tok := range toks {
			t.verifyReqs[i] = t.request("POST", "/v1/sessions/verify", `{"token":"`+tok+`"}`)
		}
	}

	// Warm-up, then interleaved rounds: forward, backward, forward, ...
	for _, t := range targets {
		if o.warmup > 0 {
			t.round(o.warmup, false)
		}
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		for _, t := range targets {
			abs, _ := filepath.Abs(filepath.Join(o.profileDir, t.name))
			if _, err := t.srv.command("profile " + abs); err != nil {
				return err
			}
		}
	}
	results := map[*target][]*result{}
	idle := make([]idleUse, len(targets)) // each server's CPU while the others were measured
	dbIdle := make([]idleUse, len(dbs))   // each store server's while none of its servers was
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tserver\treq/s\tp50\tp99\tmax\tserver CPU/req\tstore CPU/req\tclient CPU/req\tallocs/req\terrors\t")
	for r := range o.rounds {
		order := targets
		if r%2 == 1 {
			order = slices.Clone(targets)
			slices.Reverse(order)
		}
		for _, t := range order {
			before := snap(targets, dbs)
			res := t.round(o.duration, false)
			after := snap(targets, dbs)
			wall := after.at.Sub(before.at)
			for i, u := range targets {
				if u == t {
					res.setServer(before.srv[i], after.srv[i])
				} else {
					idle[i].add(after.srv[i].cpu-before.srv[i].cpu, wall)
				}
			}
			res.clientCPU = after.client - before.client
			for i, db := range dbs {
				if db == t.db {
					res.storeCPU = after.db[i] - before.db[i]
				} else {
					dbIdle[i].add(after.db[i]-before.db[i], wall)
				}
			}
			results[t] = append(results[t], res)
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r+1, t.name, res.rate(),
				ms(res.pct(50)), ms(res.pct(99)), ms(res.pct(100)), perReq(res.cpu, res.n), perReq(res.storeCPU, res.n),
				perReq(res.clientCPU, res.n), res.allocsPerReq(), res.errors)
		}
	}
	tw.Flush()
	if o.profileDir != "" {
		for _, t := range targets {
			if _, err := t.srv.command("stopprofile"); err != nil {
				return err
			}
		}
		fmt.Printf("\nprofiles in %s: go tool pprof -top %s\n", o.profileDir, filepath.Join(o.profileDir, "lapse.cpu.pprof"))
	}

	fmt.Println("\nsummary over all rounds (latency percentiles over every request):")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\treq/s\tmin\tmax\tp50\tp99\tserver CPU/req\tstore CPU/req\tclient CPU/req\tallocs/req\terrors\tfeed lost\t")
	totals := map[*target]*result{}
	var bare *target
	for _, t := range targets {
		if t.name == "bare" {
			bare = t
		}
		all := merge(results[t])
		totals[t] = all
		lo, hi := spread(results[t])
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", t.name, all.rate(), lo, hi,
			ms(all.pct(50)), ms(all.pct(99)), perReq(all.cpu, all.n), perReq(all.storeCPU, all.n), perReq(all.clientCPU, all.n),
			all.allocsPerReq(), all.errors, all.feedLost)
	}
	tw.Flush()
	if bare != nil {
		b := totals[bare]
		fmt.Println()
		for _, t := range targets {
			if t == bare {
				continue
			}
			l := totals[t]
			var per []string
			for i, r := range results[t] {
				per = append(per, fmt.Sprintf("%.2f", r.rate()/results[bare][i].rate()))
			}
			goal := "; goal >= 0.80"
			if t.cacheSize < 0 {
				goal = "; every verify reads the store"
			}
			fmt.Printf("RATIO %s/bare throughput: %.2f (per round: %s%s)\n", t.name, l.rate()/b.rate(), strings.Join(per, " "), goal)
			if b.cpu > 0 && l.cpu > 0 {
				bc := float64(b.cpu) / float64(b.n)
				r := float64(l.cpu) / float64(l.n) / bc
				fmt.Printf("RATIO %s/bare server CPU per request: %.2f (so %.2f throughput where the server alone is the bottleneck)", t.name, r, 1/r)
				if t.db != nil && l.storeCPU > 0 {
					r2 := float64(l.cpu+l.storeCPU) / float64(l.n) / bc
					fmt.Printf("; with the store server's CPU: %.2f", r2)
				}
				fmt.Println()
			}
		}
	}
	if o.url == "" && len(targets) > 1 {
		fmt.Print("\nbackground CPU while not measured (sweeps, change feed; ms of CPU per s):")
		for i, t := range targets {
			fmt.Printf(" %s %s", t.name, idle[i])
		}
		for i, db := range dbs {
			fmt.Printf(" %s %s", db.name(), dbIdle[i])
		}
		fmt.Println()
	}

	if o.createDuration > 0 {
		fmt.Printf("\nsession creation over HTTP (POST /v1/sessions; SQLite with the log synced before each answer, Redis without persistence, PostgreSQL with fsync off), %v each:\n", o.createDuration)
		tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "server\tconnections\tsessions/s\tp50\tp99\tserver CPU/req\tstore CPU/req\terrors\t")
		for _, t := range targets {
			if t.store == "" || t.cacheSize < 0 {
				continue
			}
			for _, c := range uniq(1, o.concurrency) {
				res := t.createFor(o.createDuration, c)
				fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t\n", t.name, c, res.rate(), ms(res.pct(50)), ms(res.pct(99)),
					perReq(res.cpu, res.n), perReq(res.storeCPU, res.n), res.errors)
			}
		}
		tw.Flush()
	}
	if o.touchDuration > 0 {
		if err := touchReport(targets, o); err != nil {
			return err
		}
	}
	return nil
}

// idleUse adds up a server's CPU time over wall time.
type idleUse struct{ cpu, wall time.Duration }

func (u *idleUse) add(cpu, wall time.Duration) { u.cpu += cpu; u.wall += wall }

func (u idleUse) String() string {
	if u.wall == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(u.cpu)/1e6/u.wall.Seconds())
}

// snapshot is the resources every process has used so far.
type snapshot struct {
	at     time.Time
	client time.Duration
	srv    []stats         // by target
	db     []time.Duration // by store server
}

func snap(targets []*target, dbs []dbServer) snapshot {
	s := snapshot{srv: make([]stats, len(targets)), db: make([]time.Duration, len(dbs))}
	for i, t := range targets {
		s.srv[i] = t.srv.stats()
	}
	for i, db := range dbs {
		s.db[i] = db.cpu()
	}
	s.client = cpuTime()
	s.at = time.Now()
	return s
}

// loadavg returns the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func procsString(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

func uniq(a, b int) []int {
	if a == b {
		return []int{a}
	}
	return []int{a, b}
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// target is one server under test and the client's connections to it.
type target struct {
	name      string
	kind      kind
	cacheSize int
	store     string      // which sessions it knows: "" (bare), "sqlite:NAME", "lapse-redis", "lapse-postgres", "url"
	db        dbServer    // the shared store's server, of a lapse-redis or lapse-postgres server
	addr      string      // host:port to dial
	host      string      // Host header
	prefix    string      // path prefix of an external lapse
	tls       *tls.Config // nil for plain HTTP
	key       string
	srv       *child // nil for an external server

	conns       []*client
	verifyReqs  [][]byte
	cacheMemory int64
}

// start runs the target's server in a child process.
func (t *target) start(o options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-serve", t.kind.serve}
	if t.kind.serve != "bare" {
		args = append(args, "-cache-size", strconv.Itoa(t.cacheSize))
	}
	if t.kind.single {
		args = append(args, "-max-batch", "1")
	}
	if t.cacheMemory > 0 {
		args = append(args, "-cache-memory", strconv.FormatInt(t.cacheMemory, 10))
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), keyEnv+"="+t.key)
	if t.db != nil {
		cmd.Env = append(cmd.Env, storeEnv+"="+t.db.url())
	}
	if o.serverProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.serverProcs))
	}
	cmd.Stderr = os.Stderr
	c := &child{cmd: cmd}
	if c.in, err = cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	c.out = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		return err
	}
	t.srv = c
	addr, err := c.read("addr")
	if err != nil {
		t.stop()
		return fmt.Errorf("%s server did not start: %w", t.name, err)
	}
	t.addr, t.host = addr, addr
	return nil
}

func (t *target) stop() {
	if t.srv != nil {
		t.srv.in.Close() // the server exits at the end of its input
		t.srv.cmd.Wait()
		t.srv = nil
	}
}

func (t *target) dialAll(n int) {
	t.conns = make([]*client, n)
	for i := range t.conns {
		t.conns[i] = &client{addr: t.addr, tls: t.tls}
	}
}

// request returns the bytes of one HTTP/1.1 request with the API key.
func (t *target) request(method, path, body string) []byte {
	return fmt.Appendf(nil, "%s %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		method, t.prefix, path, t.host, t.key, len(body), body)
}

// createSessions creates n sessions in lapse with up to c connections and
// returns their tokens.
func (t *target) createSessions(n, c int, tier string) ([]string, *result, error) {
	tokens := make([]string, n)
	var next atomic.Int64
	seq := sessionSeq.Add(int64(n)) - int64(n)
	inTier := ""
	if tier != "" {
		inTier = fmt.Sprintf(`,"tier":%q`, tier)
	}
	res := t.run(min(c, n), func(w int, cl *client) (outcome, error) {
		i := int(next.Add(1)) - 1
		if i >= n {
			return done, nil
		}
		status, body, err := cl.do(t.request("POST", "/v1/sessions", fmt.Sprintf(`{"subject":"loadgen-%d","amr":["pwd"]%s}`, seq+int64(i), inTier)), true)
		if err != nil {
			return failed, err
		}
		var resp struct{ Token string }
		if status != http.StatusCreated || json.Unmarshal(body, &resp) != nil || resp.Token == "" {
			return failed, fmt.Errorf("creating a session: status %d: %.200s", status, body)
		}
		tokens[i] = resp.Token
		return passed, nil
	})
	if res.err != nil {
		return nil, nil, res.err
	}
	return tokens, res, nil
}

// sessionSeq numbers the subjects of the sessions created, so that no
// subject has two: stores that several servers share see each once.
var sessionSeq atomic.Int64

// createFor creates sessions with c connections for d.
func (t *target) createFor(d time.Duration, c int) *result {
	var seq atomic.Int64
	stop := time.Now().Add(d)
	dbs := []dbServer{}
	if t.db != nil {
		dbs = append(dbs, t.db)
	}
	before := snap([]*target{t}, dbs)
	res := t.run(c, func(w int, cl *client) (outcome, error) {
		if time.Now().After(stop) {
			return done, nil
		}
		status, _, err := cl.do(t.request("POST", "/v1/sessions", fmt.Sprintf(`{"subject":"loadgen-create-%s-%d","amr":["pwd"]}`, t.name, seq.Add(1))), false)
		return check(status, http.StatusCreated, err)
	})
	after := snap([]*target{t}, dbs)
	res.setServer(before.srv[0], after.srv[0])
	if t.db != nil {
		res.storeCPU = after.db[0] - before.db[0]
	}
	return res
}

// round drives verify with every connection for d. With count, it reads
// each reply and counts in the result's wrote the verifies that wrote
// their session's activity.
func (t *target) round(d time.Duration, count bool) *result {
	stop := time.Now().Add(d)
	var wrote atomic.Int64
	res := t.run(len(t.conns), func(w int, cl *client) (outcome, error) {
		if time.Now().After(stop) {
			return done, nil
		}
		cl.seq++
		req := t.verifyReqs[(w+cl.seq*len(t.conns))%len(t.verifyReqs)]
		if !count {
			status, _, err := cl.do(req, false)
			return check(status, http.StatusOK, err)
		}
		sent := time.Now()
		status, reply, err := cl.do(req, true)
		if err == nil && status == http.StatusOK && wroteActivity(reply, sent, time.Now()) {
			wrote.Add(1)
		}
		return check(status, http.StatusOK, err)
	})
	res.wrote, res.counted = int(wrote.Load()), count
	return res
}

// wroteActivity tells whether reply, to a verify sent at sent and
// answered by received, carries an activity write made during the
// verify: whether its last_active_at is the time of the verify, not that
// of an earlier one (a millisecond's leeway each side for the clock's
// reading in the server). Two verifies of one session at once would both
// count; the measurements verify tokens in turn, so none overlap.
func wroteActivity(reply []byte, sent, received time.Time) bool {
	at, err := time.Parse(time.RFC3339Nano, string(field(reply, "last_active_at")))
	return err == nil && !at.Before(sent.Add(-time.Millisecond)) && !at.After(received.Add(time.Millisecond))
}

// outcome is what one operation of a measurement did.
type outcome int

const (
	done   outcome = iota // the measurement is over; nothing was sent
	passed                // answered as expected: timed
	failed                // answered otherwise, or not at all: counted
)

// run calls op on c connections in parallel until it returns done or an
// error, timing each call that passed and counting each that failed. An
// error (a transport failure) stops that connection.
func (t *target) run(c int, op func(w int, cl *client) (outcome, error)) *result {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		res = &result{}
	)
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := t.conns[w%len(t.conns)]
			lat := make([]time.Duration, 0, 1<<14)
			var (
				errs int
				err  error
			)
			for {
				t0 := time.Now()
				var o outcome
				o, err = op(w, cl)
				if o == done {
					break
				}
				if o == failed {
					errs++
					if err != nil {
						break
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			if err != nil && res.err == nil {
				res.err = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	return res
}

// check returns the outcome of a request that should have been answered
// with want.
func check(status, want int, err error) (outcome, error) {
	if err != nil || status != want {
		return failed, err
	}
	return passed, nil
}

// result is what one measurement saw.
type result struct {
	n         int             // successful requests
	errors    int             // failed requests
	err       error           // the first transport error
	elapsed   time.Duration   // wall time
	lat       []time.Duration // one per successful request
	sorted    bool
	cpu       time.Duration // server CPU time, user and system
	storeCPU  time.Duration // the store server's CPU time (lapse-redis and lapse-postgres servers)
	clientCPU time.Duration // loadgen's own CPU time
	mallocs   uint64        // server heap allocations
	feedLost  int64         // times the server's change feed was lost
	wrote     int           // verifies that wrote their session's activity, if counted
	counted   bool          // wrote was counted
}

// wroteShare says, if they were counted, how many of the verifies
// wrote their session's activity.
func (r *result) wroteShare() string {
	if !r.counted || r.n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d of them (%.1f %%) wrote activity", r.wrote, 100*float64(r.wrote)/float64(r.n))
}

func (r *result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

// pct returns the p-th percentile latency (100: the maximum).
func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	if !r.sorted {
		slices.Sort(r.lat)
		r.sorted = true
	}
	return r.lat[min(len(r.lat)-1, len(r.lat)*p/100)]
}

// setServer records the resources the server used between before and
// after.
func (r *result) setServer(before, after stats) {
	r.cpu = after.cpu - before.cpu
	r.mallocs = after.mallocs - before.mallocs
	r.feedLost = after.feedLost - before.feedLost
}

// perReq formats CPU time per request, "-" if unknown.
func perReq(cpu time.Duration, n int) string {
	if cpu == 0 || n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fµs", float64(cpu)/float64(n)/1e3)
}

func (r *result) allocsPerReq() string {
	if r.mallocs == 0 || r.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(r.mallocs)/float64(r.n))
}

// merge adds up rounds: their requests, time, CPU and latencies.
func merge(rs []*result) *result {
	all := &result{}
	for _, r := range rs {
		all.n += r.n
		all.errors += r.errors
		all.elapsed += r.elapsed
		all.cpu += r.cpu
		all.storeCPU += r.storeCPU
		all.clientCPU += r.clientCPU
		all.mallocs += r.mallocs
		all.feedLost += r.feedLost
		all.lat = append(all.lat, r.lat...)
	}
	return all
}

// spread returns the lowest and highest rate of the rounds.
func spread(rs []*result) (lo, hi float64) {
	for i, r := range rs {
		if i == 0 || r.rate() < lo {
			lo = r.rate()
		}
		hi = max(hi, r.rate())
	}
	return lo, hi
}

// client is one keep-alive HTTP/1.1 connection. It writes prepared
// requests and reads responses with Content-Length or chunked bodies:
// enough for these servers, at a fraction of net/http's client cost.
type client struct {
	addr string
	tls  *tls.Config
	c    net.Conn
	br   *bufio.Reader
	body []byte
	seq  int // requests sent, to pick the next session
}

func (c *client) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if c.tls != nil {
		conn = tls.Client(conn, c.tls)
	}
	c.c, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	return nil
}

func (c *client) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends req and returns the response's status and, if keep, its body
// (valid until the next call). A request on a connection the server had
// closed is retried once on a new one.
func (c *client) do(req []byte, keep bool) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		fresh := c.c == nil
		if fresh {
			if err := c.dial(); err != nil {
				return 0, nil, err
			}
		}
		c.c.SetDeadline(time.Now().Add(30 * time.Second))
		status, body, closing, err := c.exchange(req, keep)
		if err == nil {
			if closing {
				c.close()
			}
			return status, body, nil
		}
		c.close()
		if fresh || attempt > 0 {
			return 0, nil, err
		}
	}
}

func (c *client) exchange(req []byte, keep bool) (status int, body []byte, closing bool, err error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, fmt.Errorf("bad status line %q", line)
	}
	status = atoi(line[9:12])
	length, chunked := -1, false
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		if len(line) <= 2 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length = atoi(v)
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case chunked:
		for {
			line, err := c.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 32)
			if err != nil {
				return 0, nil, false, fmt.Errorf("bad chunk size %q", line)
			}
			if size == 0 {
				for { // trailers, then the final CRLF
					if line, err = c.br.ReadSlice('\n'); err != nil {
						return 0, nil, false, err
					} else if len(line) <= 2 {
						break
					}
				}
				break
			}
			if err := c.readBody(int(size)+2, keep); err != nil { // with its CRLF
				return 0, nil, false, err
			}
		}
	case length >= 0:
		if err := c.readBody(length, keep); err != nil {
			return 0, nil, false, err
		}
	case status == http.StatusNoContent || status == http.StatusNotModified:
	default:
		return 0, nil, false, errors.New("response without a length")
	}
	return status, c.body, closing, nil
}

func (c *client) readBody(n int, keep bool) error {
	if !keep {
		_, err := c.br.Discard(n)
		return err
	}
	start := len(c.body)
	c.body = slices.Grow(c.body, n)[:start+n]
	_, err := io.ReadFull(c.br, c.body[start:])
	return err
}

// atoi parses the decimal digits of b, or returns -1.
func atoi(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// child is a server process and its command line: loadgen writes
// commands to its stdin and reads one reply line per command.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

// read returns the rest of the next line, which must start with word.
func (c *child) read(word string) (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", err
		}
		return "", io.ErrUnexpectedEOF
	}
	first, rest, _ := strings.Cut(c.out.Text(), " ")
	if first != word {
		return "", fmt.Errorf("server said %q, want %s", c.out.Text(), word)
	}
	return rest, nil
}

func (c *child) command(cmd string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, cmd+"\n"); err != nil {
		return "", err
	}
	return c.read("ok")
}

// stats is a server process's resource use so far.
type stats struct {
	cpu      time.Duration
	mallocs  uint64
	feedLost int64 // times its change feed was lost (lapse-redis)
}

// stats returns the server's stats; those of an external server (c nil)
// are zero.
func (c *child) stats() stats {
	var s stats
	if c == nil {
		return s
	}
	line, err := c.command("stats")
	if err != nil {
		return s
	}
	var cpu int64
	fmt.Sscan(line, &cpu, &s.mallocs, &s.feedLost)
	s.cpu = time.Duration(cpu)
	return s
}

// cpuTime returns the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
