package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
)

// staleAfter is how long B may go on accepting a revoked session before
// the sample counts as stale and loadgen moves on.
const staleAfter = 5 * time.Second

// sample is one revocation: when A answered the revoke and when B was
// first seen refusing the session, both from the moment the revoke was
// sent, and how many verifies B answered meanwhile.
type sample struct {
	answered, refused time.Duration
	polls             int
	stale             bool
}

// runPropagation measures how soon a session revoked on one node is
// refused by another, which had it in its verify cache, on each shared
// store of -propagation-stores in turn.
func runPropagation(o options) error {
	fmt.Printf("loadgen -propagation: %d CPUs, client GOMAXPROCS %d, server GOMAXPROCS %s, %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), procsString(o.serverProcs), runtime.Version())
	fmt.Printf("two nodes A and B on one shared store; %d sessions per phase: verify on B (B caches it), revoke on A, poll B until 401 session_revoked\n", o.propagation)
	fmt.Printf("load average at start: %s\n", loadavg())
	defer func() { fmt.Printf("\nload average at end: %s\n", loadavg()) }()
	for _, st := range o.propagationStores {
		fmt.Printf("\n== on %s\n", st)
		if err := propagationOn(o, "lapse-"+st); err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	fmt.Println("\nB refused: from sending the revoke to A until B's first 401 session_revoked; after A's 204: the part of it after A")
	fmt.Println("answered (0 when B refused first); B is polled on one connection, so each figure is late by up to one poll.")
	return nil
}

// propagationOn measures propagation between two servers of kind serve
// on one fresh store server.
func propagationOn(o options, serve string) error {
	db, err := startDB(serve)
	if err != nil {
		return err
	}
	fmt.Println()
	key := lapse.NewAPIKey()
	nodes := make([]*target, 2)
	for i, name := range []string{"A", "B"} {
		nodes[i] = &target{name: name, kind: kinds[serve], cacheSize: o.cacheSize, key: key, store: serve, db: db}
		if err := nodes[i].start(o); err != nil {
			return err
		}
		cleanup.add(nodes[i].stop)
		nodes[i].dialAll(o.concurrency)
	}
	a, b := nodes[0], nodes[1]

	// Sessions to revoke, one set per phase, and sessions for B's load;
	// all created on A.
	toRevoke, _, err := a.createSessions(2*o.propagation, o.concurrency, "")
	if err != nil {
		return err
	}
	loadTokens, _, err := a.createSessions(o.sessions, o.concurrency, "")
	if err != nil {
		return err
	}
	for _, tok := range loadTokens {
		b.verifyReqs = append(b.verifyReqs, b.request("POST", "/v1/sessions/verify", `{"token":"`+tok+`"}`))
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tsamples\tB refused p50\tp99\tmax\tafter A's 204 p50\tp99\tmax\trefused by A's 204\tA's 204 p50\tp99\tpolls of B p50\tB verifies/s\tfeed lost A/B\tstale\t")
	for phase, name := range []string{"idle", "B loaded"} {
		toks := toRevoke[phase*o.propagation : (phase+1)*o.propagation]
		before := snap(nodes, nil)
		var (
			stop atomic.Bool
			load = make(chan *result, 1)
		)
		if phase == 1 { // B verifies from -concurrency connections meanwhile
			go func() {
				load <- b.run(len(b.conns), func(w int, cl *client) (outcome, error) {
					if stop.Load() {
						return done, nil
					}
					cl.seq++
					status, _, err := cl.do(b.verifyReqs[(w+cl.seq*len(b.conns))%len(b.verifyReqs)], false)
					return check(status, http.StatusOK, err)
				})
			}()
			time.Sleep(time.Second) // let the load settle
		}
		samples, err := measure(a, b, toks)
		stop.Store(true)
		loadRate := "-"
		if phase == 1 {
			if res := <-load; res.n > 0 {
				loadRate = fmt.Sprintf("%.0f", res.rate())
			}
		}
		if err != nil {
			return fmt.Errorf("phase %s: %w", name, err)
		}
		after := snap(nodes, nil)

		refused, afterAnswer, answered := &result{}, &result{}, &result{}
		var polls []time.Duration // counts, sorted like durations
		already, stale := 0, 0
		for _, s := range samples {
			if s.stale {
				stale++
				continue
			}
			refused.lat = append(refused.lat, s.refused)
			answered.lat = append(answered.lat, s.answered)
			afterAnswer.lat = append(afterAnswer.lat, max(0, s.refused-s.answered))
			if s.refused <= s.answered {
				already++
			}
			polls = append(polls, time.Duration(s.polls))
		}
		p := &result{lat: polls}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%d\t%s\t%d/%d\t%d\t\n", name, len(samples),
			ms(refused.pct(50)), ms(refused.pct(99)), ms(refused.pct(100)),
			ms(afterAnswer.pct(50)), ms(afterAnswer.pct(99)), ms(afterAnswer.pct(100)),
			100*float64(already)/float64(max(1, len(refused.lat))),
			ms(answered.pct(50)), ms(answered.pct(99)), int64(p.pct(50)), loadRate,
			after.srv[0].feedLost-before.srv[0].feedLost, after.srv[1].feedLost-before.srv[1].feedLost, stale)
	}
	tw.Flush()
	for _, n := range nodes {
		n.stop()
	}
	return nil
}

// measure revokes each token on a after b has verified it, and polls b
// from the moment the revoke is sent until b refuses the session.
func measure(a, b *target, tokens []string) ([]sample, error) {
	poll := &client{addr: b.addr}
	rev := &client{addr: a.addr}
	defer poll.close()
	defer rev.close()
	var out []sample
	for _, tok := range tokens {
		body := `{"token":"` + tok + `"}`
		verify := b.request("POST", "/v1/sessions/verify", body)
		revoke := a.request("POST", "/v1/sessions/revoke", body)
		// B verifies the session first, so that it holds it in its cache.
		if status, _, err := poll.do(verify, false); err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("verify on B before the revoke: status %d, %v", status, err)
		}
		type answer struct {
			at     time.Duration
			status int
			err    error
		}
		answered := make(chan answer, 1)
		t0 := time.Now()
		go func() {
			status, _, err := rev.do(revoke, false)
			answered <- answer{time.Since(t0), status, err}
		}()
		s := sample{}
		for {
			status, reply, err := poll.do(verify, true)
			if err != nil {
				<-answered
				return nil, fmt.Errorf("verify on B: %w", err)
			}
			s.polls++
			if status == http.StatusUnauthorized && bytes.Contains(reply, []byte(`"session_revoked"`)) {
				s.refused = time.Since(t0)
				break
			}
			if status != http.StatusOK {
				<-answered
				return nil, fmt.Errorf("verify on B after the revoke: status %d: %.200s", status, reply)
			}
			if time.Since(t0) > staleAfter {
				s.stale = true
				break
			}
		}
		ans := <-answered
		if ans.err != nil || ans.status != http.StatusNoContent {
			return nil, fmt.Errorf("revoke on A: status %d, %v", ans.status, ans.err)
		}
		s.answered = ans.at
		out = append(out, s)
		time.Sleep(time.Millisecond)
	}
	return out, nil
}
