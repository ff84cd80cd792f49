package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
// and then replays each of its credentials once, to bracket when the target ends idle
// sessions (WSTG-SESS-07). A credential that signs the browser back in (remember-me) is
// reported but not judged here: it is judged against logout and the absolute timeout.
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
	notes := make([]string, len(pts))
	errs := make([]error, len(pts))
	var wg sync.WaitGroup
	for i, d := range pts {
		wg.Go(func() {
			s := &session{}
			if errs[i] = p.c.signIn(ctx, s); errs[i] != nil {
				return
			}
			creds := slices.DeleteFunc(p.credentials(s), func(cr credential) bool { return cr.refresh != "" })
			start, sent := s.lastUsed, s.lastSent
			if errs[i] = p.wait(ctx, r, start.Add(d), "%d sessions idle", len(pts)); errs[i] != nil {
				return
			}
			// The app saw at least this much idleness when it accepted, and at most the
			// time from the last request sent to the last answer when it refused: a slow
			// exchange makes neither verdict look worse than it was.
			after := time.Since(start)
			var results []replayed
			if results, errs[i] = p.replayAll(ctx, creds); errs[i] != nil {
				return
			}
			ok := slices.ContainsFunc(results, func(res replayed) bool { return res.ok && !res.signsIn })
			if !ok {
				after = time.Since(sent)
			}
			obs[i] = observation{after, ok}
			lanes[i] = Lane{Label: fmt.Sprintf("idle %s", d), Start: start, Marks: []Mark{{After: after.Seconds(), Accepted: ok}}}
			notes[i] = idleNote(after, ok, results)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
	}
	r.Evidence = append(r.Evidence, notes...)
	if slices.ContainsFunc(p.shapes, func(sh shape) bool { return sh.signsIn }) {
		r.note("a credential that signs the browser back in (remember-me) is not judged against the idle timeout, but against sign-out and the absolute timeout")
	}
	r.Timeline = lanes
	r.Expected = window(idle-tol, idle+tol)
	var detail string
	r.Status, detail, r.Measured = judgeTimeout(obs, idle, tol, true, func(d string) string { return "after " + d + " of inactivity" })
	r.Detail = detail
}

// idleNote says what the credentials of a session idle for after reached.
func idleNote(after time.Duration, ok bool, results []replayed) string {
	note := fmt.Sprintf("idle %s: %s", after.Round(time.Millisecond), verdict(ok))
	if len(results) < 2 && !slices.ContainsFunc(results, func(res replayed) bool { return res.signsIn }) {
		return note
	}
	var each []string
	for _, res := range results {
		switch {
		case res.signsIn:
			each = append(each, res.label+" signed the browser back in")
		default:
			each = append(each, res.label+" "+verdict(res.ok))
		}
	}
	return note + ": " + strings.Join(each, "; ")
}

func verdict(accepted bool) string {
	if accepted {
		return "accepted"
	}
	return "refused"
}

// checkAbsolute keeps one session busy (refreshing it where the target has a refresh
// request) and checks that it still ends by the absolute timeout; at the timeout plus
// its tolerance it replays every credential the session then holds, since one that
// signs the browser back in must end by then too (WSTG-SESS-07).
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
	signedIn := slices.Clone(s.cookies)
	points := absolutePoints(limit, tol, keepAlive)
	p.progress(Event{Check: r.ID, Message: "keeping a session busy", Until: start.Add(points[len(points)-1])})
	obs, lane, err := p.keepBusy(ctx, r, s, points)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	how := "the authenticated URL"
	if p.t.Refresh != nil {
		how = "the refresh request and the authenticated URL"
	}
	r.note("kept busy every %s with %s; %d tries", keepAlive, how, len(obs))
	// Past the timeout, replay the cookies the sign-in gave, and the latest token and
	// refresh token.
	if err := sleepUntil(ctx, start.Add(limit+tol)); err != nil {
		r.set(Error, "%v", err)
		return
	}
	results, err := p.replayAll(ctx, p.credentials(&session{cookies: signedIn, token: s.token, refresh: s.refresh}))
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	after := time.Since(start)
	lanes := []Lane{lane}
	var late []string
	for _, res := range results {
		r.note("%s after sign-in: %s", after.Round(time.Millisecond), res)
		obs = append(obs, observation{after, res.ok})
		lanes = append(lanes, Lane{Label: res.label, Start: start, Marks: []Mark{{After: after.Seconds(), Accepted: res.ok}}})
		switch {
		case res.ok && res.signsIn:
			late = append(late, res.label+", signing the browser back in")
		case res.ok:
			late = append(late, res.label)
		}
	}
	r.Timeline = lanes
	r.Expected = window(limit-tol, limit+tol)
	var detail string
	r.Status, detail, r.Measured = judgeTimeout(obs, limit, tol, false, func(d string) string { return d + " after sign-in" })
	if len(late) > 0 {
		detail += fmt.Sprintf("; still authenticating %s after sign-in: %s", after.Round(time.Millisecond), strings.Join(late, "; "))
	}
	r.Detail = detail
}

// keepBusy uses s at each of points after its sign-in until it is refused, noting when
// the app signed it back in.
func (p *prober) keepBusy(ctx context.Context, r *Result, s *session, points []time.Duration) ([]observation, Lane, error) {
	start := s.signedIn
	lane := Lane{Label: "busy session", Start: start}
	var obs []observation
	for _, d := range points {
		if err := sleepUntil(ctx, start.Add(d)); err != nil {
			return nil, lane, err
		}
		if p.t.Refresh != nil {
			if _, err := p.c.refresh(ctx, s); err != nil {
				r.note("refresh at %s: %v", time.Since(start).Round(time.Millisecond), err)
			}
		}
		sent := map[string]string{}
		for _, c := range s.cookies {
			sent[c.Name] = c.Value
		}
		after := time.Since(start)
		ok, ex, err := p.c.accepted(ctx, s)
		if err != nil {
			return nil, lane, err
		}
		if name := p.newCredential(sent, ex); ok && name != "" {
			r.note("%s after sign-in, the app signed the session back in with a new cookie %s (%s)", after.Round(time.Millisecond), name, ex.trail())
		}
		obs = append(obs, observation{after, ok})
		lane.Marks = append(lane.Marks, Mark{After: after.Seconds(), Accepted: ok})
		if !ok {
			break
		}
	}
	return obs, lane, nil
}
