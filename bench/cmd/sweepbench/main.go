// Command sweepbench measures how soon after their deadline the sweeper
// records the expiry of many sessions that share one deadline second:
// it creates N sessions whose idle deadlines all fall within the same
// second, runs the engine's sweeper on the real clock, and reports the
// latency from each session's deadline to the commit of its
// session.expired event (p50, p99, max).
//
//	go run ./bench/cmd/sweepbench -n 100000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/sqlite"
)

// shiftedClock is the real clock moved by a fixed offset, so sessions
// created "in the past" share a deadline that real time then reaches.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *shiftedClock) set(offset time.Duration) {
	c.mu.Lock()
	c.offset = offset
	c.mu.Unlock()
}

// observer records when each ended session was reported.
type observer struct {
	clock *shiftedClock
	mu    sync.Mutex
	late  []time.Duration
}

func (o *observer) Verified(lapse.Code, time.Duration) {}
func (o *observer) Created(*lapse.Session)             {}
func (o *observer) Ended(s *lapse.Session) {
	now := o.clock.Now()
	o.mu.Lock()
	o.late = append(o.late, now.Sub(s.EndedAt))
	o.mu.Unlock()
}

func main() {
	n := flag.Int("n", 100_000, "sessions sharing one deadline second")
	every := flag.Duration("every", 200*time.Millisecond, "sweep interval (lapse serve's default)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the sweep to `file`")
	live := flag.Int("live", 0, "`sessions` more, created first, that stay live through the sweep (deadlines hours away)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "sweepbench-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(filepath.Join(dir, "lapse.db"))
	if err != nil {
		panic(err)
	}
	defer st.Close()
	const idle = time.Minute
	policy := &lapse.Policy{DefaultTier: "t", Tiers: map[string]lapse.Tier{
		"t":    {IdleTimeout: idle, AbsoluteTimeout: time.Hour},
		"live": {IdleTimeout: 4 * time.Hour, AbsoluteTimeout: 8 * time.Hour}}}
	clock := &shiftedClock{}
	obs := &observer{clock: clock}
	m, err := lapse.New(lapse.Config{Store: st, Policy: policy, Clock: clock, Observer: obs, CacheSize: -1})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	if *live > 0 {
		createLive(ctx, m, *live)
	}

	// Create every session within one second of "creation time" C; their
	// idle deadlines fall in [C+idle, C+idle+1s).
	fmt.Fprintf(os.Stderr, "creating %d sessions...\n", *n)
	start := time.Now()
	base := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				clock.set(base.Add(time.Duration(i) * time.Second / time.Duration(*n)).Sub(time.Now().UTC()))
				if _, _, err := m.Create(ctx, lapse.CreateParams{Subject: fmt.Sprint("u", i)}); err != nil {
					panic(err)
				}
			}
		}()
	}
	for i := range *n {
		work <- i
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "created in %v\n", time.Since(start).Round(time.Millisecond))
	sweepLoad := loadavg()

	// Shift the clock so the shared deadline second starts 2s from now,
	// then sweep on the real clock.
	deadline := base.Add(idle)
	clock.set(deadline.Sub(time.Now().UTC().Add(2 * time.Second)))
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			panic(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { m.Run(runCtx, lapse.RunOptions{SweepEvery: *every, Retention: -1}); close(done) }()
	for {
		obs.mu.Lock()
		got := len(obs.late)
		obs.mu.Unlock()
		if got >= *n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	<-done
	slices.Sort(obs.late)
	q := func(p float64) time.Duration {
		return obs.late[int(p*float64(len(obs.late)-1))].Round(time.Millisecond)
	}
	fmt.Printf("live=%d sessions=%d sweep_every=%v deadline_to_expired: p50=%v p99=%v max=%v\n", *live, *n, *every, q(0.5), q(0.99), q(1))
	fmt.Printf("load average: %s before the sweep, %s after it\n", sweepLoad, loadavg())
}

// loadavg returns the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// createLive creates n sessions of the "live" tier, 64 at a time so that
// the store commits them in batches, and says how long it took.
func createLive(ctx context.Context, m *lapse.Manager, n int) {
	fmt.Fprintf(os.Stderr, "creating %d live sessions...\n", n)
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, _, err := m.Create(ctx, lapse.CreateParams{Subject: fmt.Sprint("live", i), Tier: "live"}); err != nil {
					panic(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	fmt.Fprintf(os.Stderr, "created the live sessions in %v\n", time.Since(start).Round(time.Millisecond))
}
