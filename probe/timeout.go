package probe

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// observation is one try of a session: how long after its clock started (sign-in, or
// its last activity) and whether the target still accepted it.
type observation struct {
	after    time.Duration
	accepted bool
}

// bracket returns when a session ended, judging by observations: after lo, the last
// time it was accepted before it was first refused, and by hi, the first time it was
// refused. ended is false when it was never refused; lo is then the last acceptance.
func bracket(obs []observation) (lo, hi time.Duration, ended bool) {
	obs = slices.Clone(obs)
	slices.SortFunc(obs, func(a, b observation) int { return int(a.after - b.after) })
	for _, o := range obs {
		if !o.accepted {
			return lo, o.after, true
		}
		lo = o.after
	}
	return lo, 0, false
}

// judgeTimeout judges observations of sessions against an expected timeout with a
// tolerance: a session accepted at or past limit+tol fails, and so does one refused at
// or before limit-tol when early counts as a failure. phrase puts a duration or a span
// in words, such as "after 2s of inactivity".
func judgeTimeout(obs []observation, limit, tol time.Duration, early bool, phrase func(string) string) (Status, string, *Window) {
	lo, hi, ended := bracket(obs)
	var late, soon *observation
	for i := range obs {
		o := &obs[i]
		if o.accepted && o.after >= limit+tol && (late == nil || o.after > late.after) {
			late = o
		}
		if !o.accepted && o.after <= limit-tol && (soon == nil || o.after < soon.after) {
			soon = o
		}
	}
	measured := window(lo, hi)
	if !ended {
		measured = &Window{Min: lo.Seconds()}
	}
	expect := fmt.Sprintf("expected %v ± %v", limit, tol)
	switch {
	case late != nil:
		return Fail, fmt.Sprintf("a session was still accepted %s (%s)", phrase(late.after.Round(time.Millisecond).String()), expect), measured
	case soon != nil && early:
		return Fail, fmt.Sprintf("a session was already refused %s (%s)", phrase(soon.after.Round(time.Millisecond).String()), expect), measured
	case soon != nil:
		return Pass, fmt.Sprintf("the session ended %s, earlier than required (%s)", phrase(measured.String()), expect), measured
	}
	return Pass, fmt.Sprintf("the session ended %s (%s)", phrase(measured.String()), expect), measured
}

// idlePoints returns the idle times at which fresh sessions are tried: spread below the
// expected timeout and across its tolerance window.
func idlePoints(idle, tol time.Duration) []time.Duration {
	pts := []time.Duration{idle / 4, idle / 2, idle - tol, idle - tol/2, idle, idle + tol/2, idle + tol}
	slices.Sort(pts)
	return slices.DeleteFunc(slices.Compact(pts), func(d time.Duration) bool { return d <= 0 })
}

// absolutePoints returns the session ages at which a busy session is tried: every
// keepAlive, and at the edges and middle of the tolerance window.
func absolutePoints(limit, tol, keepAlive time.Duration) []time.Duration {
	pts := []time.Duration{limit - tol, limit, limit + tol}
	for d := keepAlive; d < limit+tol; d += keepAlive {
		pts = append(pts, d)
	}
	slices.Sort(pts)
	return slices.Compact(pts)
}

// checkIdle signs in several sessions at once, leaves each idle for a different time
// and then tries it once, to bracket when the target ends idle sessions (WSTG-SESS-07).
func checkIdle(ctx context.Context, p *prober, r *Result) {
	idle := time.Duration(p.t.Policy.IdleTimeout)
	if idle == 0 {
		r.set(Skip, "policy.idle_timeout is not set in the target file")
		return
	}
	tol := p.t.Policy.tolerance()
	pts := idlePoints(idle, tol)
	obs := make([]observation, len(pts))
	lanes := make([]Lane, len(pts))
	errs := make([]error, len(pts))
	var wg sync.WaitGroup
	for i, d := range pts {
		wg.Go(func() {
			s := &session{}
			if errs[i] = p.c.signIn(ctx, s); errs[i] != nil {
				return
			}
			start := s.lastUsed
			if errs[i] = p.wait(ctx, r, start.Add(d), "%d sessions idle", len(pts)); errs[i] != nil {
				return
			}
			after := time.Since(start)
			ok, _, err := p.c.accepted(ctx, s)
			errs[i] = err
			obs[i] = observation{after, ok}
			lanes[i] = Lane{Label: fmt.Sprintf("idle %s", d), Start: start, Marks: []Mark{{After: after.Seconds(), Accepted: ok}}}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
	}
	for _, o := range obs {
		r.note("idle %s: %s", o.after.Round(time.Millisecond), verdict(o.accepted))
	}
	r.Timeline = lanes
	r.Expected = window(idle-tol, idle+tol)
	var detail string
	r.Status, detail, r.Measured = judgeTimeout(obs, idle, tol, true, func(d string) string { return "after " + d + " of inactivity" })
	r.Detail = detail
}

func verdict(accepted bool) string {
	if accepted {
		return "accepted"
	}
	return "refused"
}

// checkAbsolute keeps one session busy (refreshing it where the target has a refresh
// request) and checks that it still ends by the absolute timeout (WSTG-SESS-07).
func checkAbsolute(ctx context.Context, p *prober, r *Result) {
	limit := time.Duration(p.t.Policy.AbsoluteTimeout)
	if limit == 0 {
		r.set(Skip, "policy.absolute_timeout is not set in the target file")
		return
	}
	tol := p.t.Policy.tolerance()
	keepAlive := min(limit/10, 5*time.Minute)
	if idle := time.Duration(p.t.Policy.IdleTimeout); idle > 0 {
		keepAlive = min(keepAlive, idle/2)
	}
	keepAlive = max(keepAlive, 100*time.Millisecond)
	s := &session{}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	start := s.signedIn
	lane := Lane{Label: "busy session", Start: start}
	var obs []observation
	points := absolutePoints(limit, tol, keepAlive)
	p.progress(Event{Check: r.ID, Message: "keeping a session busy", Until: start.Add(points[len(points)-1])})
	for _, d := range points {
		if err := sleepUntil(ctx, start.Add(d)); err != nil {
			r.set(Error, "%v", err)
			return
		}
		if p.t.Refresh != nil {
			if err := p.c.refresh(ctx, s); err != nil {
				r.note("refresh at %s: %v", time.Since(start).Round(time.Millisecond), err)
			}
		}
		after := time.Since(start)
		ok, _, err := p.c.accepted(ctx, s)
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
		obs = append(obs, observation{after, ok})
		lane.Marks = append(lane.Marks, Mark{After: after.Seconds(), Accepted: ok})
		if !ok {
			break
		}
	}
	how := "the authenticated URL"
	if p.t.Refresh != nil {
		how = "the refresh request and the authenticated URL"
	}
	r.note("kept busy every %s with %s; %d tries", keepAlive, how, len(obs))
	r.Timeline = []Lane{lane}
	r.Expected = window(limit-tol, limit+tol)
	var detail string
	r.Status, detail, r.Measured = judgeTimeout(obs, limit, tol, false, func(d string) string { return d + " after sign-in" })
	r.Detail = detail
}
