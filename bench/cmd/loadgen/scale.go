package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

// dataDirEnv names, for a lapse server on SQLite, a data directory that
// outlives it (the -scale restart); unset, each server has a temporary
// one.
const dataDirEnv = "LOADGEN_DATA_DIR"

// maxScale caps -scale.
const maxScale = 5_000_000

// runScale is loadgen -scale N: one lapse server on SQLite (the cache
// bounded by -cache-memory, lapse serve's default without it)
// gets -scale-at sessions, verify is measured over all of them, and over
// as many more of cycleTier with activity writes; then it gets N live
// sessions in all (the cycleTier ones expire meanwhile), verify is
// measured again over all N, twice; its resident memory is read; and it
// is restarted on the same data, timed from the start of the process to
// its first verify answered 200.
//
// Verify goes through the tokens in turn. The first measurement at N
// verifies with "touch": false, as the one at -scale-at does, so that the
// two differ only by the cache and the store's size: the first RATIO.
// The second verifies as a platform would: most verifies then find a
// session last written more than a touch interval (a minute) earlier and
// write its activity, as uniform traffic over N sessions would. The
// sessions at -scale-at, just created, would write none that way, so
// the verifies that write are measured there on -scale-at sessions more,
// of cycleTier, whose touch interval is shorter than the time verify
// takes to come round to a session again: the second RATIO compares
// verifies that write at both sizes, and each measurement that writes
// says how many of its verifies did. -scale-no-touch leaves out both
// measurements that write.
func runScale(o options) error {
	if o.scaleAt < 1 || o.scaleAt >= o.scale || o.scale > maxScale {
		return fmt.Errorf("-scale-at must be at least 1 and below -scale, and -scale at most %d", maxScale)
	}
	if o.cacheMemory == 0 {
		o.cacheMemory = config.DefaultCacheMemory
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "lapse-loadgen-scale-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv(dataDirEnv, dir)
	defer os.Unsetenv(dataDirEnv)

	t := &target{name: "lapse", kind: kinds["lapse"], key: lapse.NewAPIKey(), cacheMemory: o.cacheMemory}
	if err := t.start(o); err != nil {
		return err
	}
	defer t.stop()
	t.dialAll(o.concurrency)
	fmt.Printf("scale: one lapse server on SQLite, cache_memory %d MiB, %d connections, %d rounds of %v, warm-up %v\n",
		o.cacheMemory>>20, o.concurrency, o.rounds, o.duration, o.warmup)
	fmt.Printf("load average at start: %s\n", loadavg())

	tokens, err := t.fill(nil, o.scaleAt, o.concurrency)
	if err != nil {
		return err
	}
	small := t.measureVerify(tokens, o, false)
	fmt.Printf("verify at %d sessions (\"touch\": false): %.0f/s, p50 %s, p99 %s, errors %d; server RSS %s\n",
		len(tokens), small.rate(), ms(small.pct(50)), ms(small.pct(99)), small.errors, rss(t))
	var smallTouch *result
	if !o.scaleNoTouch {
		if smallTouch, err = t.measureCycle(o); err != nil {
			return err
		}
	}

	if tokens, err = t.fill(tokens, o.scale, o.concurrency); err != nil {
		return err
	}
	for _, touch := range []bool{false, true} {
		if touch && o.scaleNoTouch {
			break
		}
		large := t.measureVerify(tokens, o, touch)
		what, base := `"touch": false, no activity writes`, small
		if touch {
			what, base = "touching, as a platform verifies", smallTouch
		}
		fmt.Printf("verify at %d sessions (%s): %.0f/s, p50 %s, p99 %s, errors %d%s; server RSS %s\n",
			len(tokens), what, large.rate(), ms(large.pct(50)), ms(large.pct(99)), large.errors, large.wroteShare(), rss(t))
		fmt.Printf("RATIO verify throughput at %d (%s) / at %d sessions: %.2f; p99 ratio %.2f\n",
			o.scale, what, o.scaleAt, large.rate()/base.rate(), float64(large.pct(99))/float64(base.pct(99)))
		if touch {
			fmt.Printf("  (against the verifies at %d sessions that write none: %.2f; p99 ratio %.2f)\n",
				o.scaleAt, large.rate()/small.rate(), float64(large.pct(99))/float64(small.pct(99)))
			if large.errors > 0 {
				fmt.Printf("WARNING: %d verifies at %d sessions failed: the ratio with writes leaves them out\n", large.errors, o.scale)
			}
			if !large.allWrote() {
				fmt.Printf("WARNING: at %d sessions fewer than 99 %% of the verifies wrote their activity (sessions not yet a touch interval, a minute, old): the ratio with writes compares unlike verifies; take a larger -scale\n", o.scale)
			}
		}
	}

	t.stop()
	begin := time.Now()
	if err := t.start(o); err != nil {
		return err
	}
	ready, err := t.firstVerify(tokens[len(tokens)-1], begin)
	if err != nil {
		return err
	}
	fmt.Printf("restart on %d sessions: ready to serve (first verify 200) %s after the process started; RSS %s\n",
		len(tokens), ready.Round(time.Millisecond), rss(t))
	fmt.Printf("load average at end: %s\n", loadavg())
	return nil
}

// fill creates sessions until tokens holds n, in steps of 50,000 with
// their rate printed, and returns tokens.
func (t *target) fill(tokens []string, n, c int) ([]string, error) {
	for len(tokens) < n {
		step := min(50_000, n-len(tokens))
		begin := time.Now()
		toks, res, err := t.createSessions(step, c, "")
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, toks...)
		fmt.Printf("  created %d sessions (%.0f/s over HTTP in this step, p99 %s, load %s)\n",
			len(tokens), float64(step)/time.Since(begin).Seconds(), ms(res.pct(99)), loadavg())
	}
	return tokens, nil
}

// measureVerify verifies every token in turn with o.concurrency
// connections for o.rounds rounds of o.duration, after o.warmup, and
// returns the rounds merged. Unless touch, the verifies write no activity.
func (t *target) measureVerify(tokens []string, o options, touch bool) *result {
	field, name := `,"touch":false`, ""
	if touch {
		field, name = "", "-touch"
	}
	t.verifyReqs = make([][]byte, len(tokens))
	for i, tok := range tokens {
		t.verifyReqs[i] = t.request("POST", "/v1/sessions/verify", `{"token":"`+tok+`"`+field+`}`)
	}
	t.dialAll(o.concurrency)
	if o.warmup > 0 {
		t.round(o.warmup, false)
	}
	if o.profileDir != "" {
		abs, _ := filepath.Abs(filepath.Join(o.profileDir, fmt.Sprintf("lapse-%d%s", len(tokens), name)))
		if _, err := t.srv.command("profile " + abs); err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: profile: %v\n", err)
		}
		defer func() {
			if _, err := t.srv.command("stopprofile"); err != nil {
				fmt.Fprintf(os.Stderr, "loadgen: stopprofile: %v\n", err)
			}
			fmt.Printf("profile of the verify rounds at %d sessions (touch %v): go tool pprof -top %s.cpu.pprof\n", len(tokens), touch, abs)
		}()
	}
	all := &result{}
	for range o.rounds {
		r := t.round(o.duration, touch)
		all.n += r.n
		all.errors += r.errors
		all.elapsed += r.elapsed
		all.lat = append(all.lat, r.lat...)
		all.wrote += r.wrote
	}
	all.counted = touch
	return all
}

// cycleTier is the tier of the sessions on which verifies that write
// are measured at -scale-at. Its warning comes before its idle deadline
// as the default tier's does, so that a verify there writes what one at
// -scale writes: the row and its entries in the deadline and warning
// indexes. The time verify takes to come round to one of the -scale-at
// sessions again must lie between its touch interval (a twentieth of its
// idle timeout, 300 ms), or some verifies write nothing, and the start
// of its warning (5.6 s), or they extend the session instead of touching
// it, and past 6 s find it expired: measureCycle says when a run missed.
const (
	cycleTier = "loadgen-cycle"
	cycleIdle = 6 * time.Second
	cycleWarn = cycleIdle / 15
)

// allWrote reports whether r counted verifies and at least 99 % of them
// wrote their sessions' activity.
func (r *result) allWrote() bool { return r.n > 0 && r.wrote >= r.n*99/100 }

// inCycleWindow reports whether verify coming round to a cycleTier
// session every comeRound makes each verify a routine activity write:
// past the touch interval, before the warning (where a verify extends
// the session instead, through another path, and at cycleIdle finds it
// expired).
func inCycleWindow(comeRound time.Duration) bool {
	return comeRound >= cycleIdle/20 && comeRound < cycleIdle-cycleWarn
}

// measureCycle creates o.scaleAt sessions of cycleTier and measures
// verify over them as measureVerify does, with activity writes. The
// sessions expire cycleIdle after it, while the store fills.
func (t *target) measureCycle(o options) (*result, error) {
	toks, _, err := t.createSessions(o.scaleAt, o.concurrency, cycleTier)
	if err != nil {
		return nil, err
	}
	res := t.measureVerify(toks, o, true)
	fmt.Printf("verify at %d sessions of tier %s (touching; %d more sessions in the store): %.0f/s, p50 %s, p99 %s, errors %d%s; server RSS %s\n",
		len(toks), cycleTier, o.scaleAt, res.rate(), ms(res.pct(50)), ms(res.pct(99)), res.errors, res.wroteShare(), rss(t))
	if comeRound := time.Duration(float64(len(toks)) / res.rate() * float64(time.Second)); res.errors > 0 || !res.allWrote() || !inCycleWindow(comeRound) {
		fmt.Printf("WARNING: at %d sessions and this rate verify came round to a session every %v, %d verifies failed and %d of %d wrote their activity; it must take from %v to under %v, with no failures and at least 99 %% writing: the ratio with writes below compares unlike verifies; change -scale-at\n",
			len(toks), comeRound.Round(time.Millisecond), res.errors, res.wrote, res.n, cycleIdle/20, cycleIdle-cycleWarn)
	}
	return res, nil
}

// firstVerify verifies tok until it is answered 200 and returns the time
// since begin.
func (t *target) firstVerify(tok string, begin time.Time) (time.Duration, error) {
	cl := &client{addr: t.addr, tls: t.tls}
	req := t.request("POST", "/v1/sessions/verify", `{"token":"`+tok+`"}`)
	for guard := time.Now().Add(time.Minute); time.Now().Before(guard); time.Sleep(time.Millisecond) {
		if status, _, err := cl.do(req, false); err == nil && status == http.StatusOK {
			return time.Since(begin), nil
		}
	}
	return 0, errors.New("the restarted server answered no verify with 200 in a minute")
}

// rss reads the server's resident memory, now and at its peak.
func rss(t *target) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.srv.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	var now, peak, anon, file string
	for line := range bytes.Lines(b) {
		k, v, _ := strings.Cut(string(line), ":")
		switch k {
		case "VmRSS":
			now = strings.TrimSpace(v)
		case "VmHWM":
			peak = strings.TrimSpace(v)
		case "RssAnon":
			anon = strings.TrimSpace(v)
		case "RssFile":
			file = strings.TrimSpace(v)
		}
	}
	return now + " (peak " + peak + "; anonymous " + anon + ", file " + file + ")"
}
