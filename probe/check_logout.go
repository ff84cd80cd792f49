package probe

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// checkLogout signs out and replays every credential the sign-in produced, each on its
// own; any that still authenticates fails the check, and is then watched to report how
// long it stays usable (WSTG-SESS-06). A target without a sign-out fails at once.
func checkLogout(ctx context.Context, p *prober, r *Result) {
	r.Evidence = append(r.Evidence, p.found...)
	if p.t.Logout.None {
		p.noLogout(ctx, r)
		return
	}
	s := &session{}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	creds := p.credentials(s)
	s.record = true
	if _, err := p.c.send(ctx, s, &p.t.Logout.Request); err != nil {
		r.set(Error, "logout: %v", err)
		return
	}
	out := s.lastUsed
	signOutNotes(r, s, creds)
	results, err := p.replayAll(ctx, creds)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	var survivors []credential
	for _, res := range results {
		r.note("after sign-out: %s", res)
		if res.ok {
			if res.refresh != "" {
				res.refresh = res.holder.refresh
			}
			res.credential.signsIn = res.signsIn
			survivors = append(survivors, res.credential)
		}
	}
	if len(survivors) == 0 {
		r.set(Pass, "all %d credential(s) the sign-in produced were refused after sign-out", len(creds))
		return
	}
	p.watchSurvivors(ctx, r, survivors, out)
}

// signOutNotes notes what the sign-out answers of s did in the browser: Clear-Site-Data,
// and which cookie credentials they left in place.
func signOutNotes(r *Result, s *session, creds []credential) {
	for _, ex := range s.log {
		if v := ex.header.Get("Clear-Site-Data"); v != "" {
			r.note("the sign-out answer sends Clear-Site-Data: %s", v)
		}
	}
	for _, cr := range creds {
		if len(cr.cookies) != 1 {
			continue
		}
		if held := s.cookie(cr.cookies[0].Name); held != nil && held.Value == cr.cookies[0].Value {
			r.note("advice: the sign-out answer did not clear cookie %s", held.Name)
		}
	}
}

// noLogout reports a target without server-side sign-out, with how long its token
// claims to live when that can be read.
func (p *prober) noLogout(ctx context.Context, r *Result) {
	detail := "no server-side sign-out: a stolen token lives until it expires (the target file says logout: none)"
	s := &session{}
	if err := p.c.signIn(ctx, s); err == nil {
		if exp, ok := jwtExpiry(s.token); ok {
			detail += fmt.Sprintf("; the token is a JSON Web Token whose exp claim ends it %s after sign-in", exp.Sub(s.signedIn).Round(time.Second))
		}
	}
	r.set(Fail, "%s", detail)
}

// watchSurvivors replays credentials that outlived sign-out until each is refused or the
// watch ends, and fails the check saying how long each still authenticated.
func (p *prober) watchSurvivors(ctx context.Context, r *Result, survivors []credential, out time.Time) {
	watch := time.Minute
	if a := time.Duration(p.t.Policy.AbsoluteTimeout); a > 0 {
		watch = a + p.t.Policy.tolerance()
	} else if i := time.Duration(p.t.Policy.IdleTimeout); i > 0 {
		watch = i + p.t.Policy.tolerance()
	}
	watch = min(watch, 10*time.Minute)
	every := max(watch/20, 250*time.Millisecond)
	if i := time.Duration(p.t.Policy.IdleTimeout); i > 0 {
		every = min(every, i/2)
	}
	w := &survivorWatch{p: p, out: out, survivors: survivors,
		lanes: make([]Lane, len(survivors)), lastOK: make([]time.Duration, len(survivors)), refusedAt: make([]time.Duration, len(survivors))}
	for i, cr := range survivors {
		w.lanes[i] = Lane{Label: cr.label, Start: out, Marks: []Mark{{After: time.Since(out).Seconds(), Accepted: true}}}
		w.lastOK[i] = time.Since(out)
	}
	p.progress(Event{Check: r.ID, Message: fmt.Sprintf("replaying %d credential(s) that outlived sign-out", len(survivors)), Until: out.Add(watch)})
	for next := out.Add(every); time.Since(out) < watch; next = next.Add(every) {
		if err := sleepUntil(ctx, next); err != nil {
			return
		}
		live, err := w.round(ctx)
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
		if live == 0 {
			break
		}
	}
	var parts []string
	for i, cr := range survivors {
		part := w.outcome(i)
		r.note("survived sign-out: %s: %s", cr, strings.TrimPrefix(strings.TrimPrefix(part, cr.label+" "), "the token (a JSON Web Token) "))
		parts = append(parts, part)
	}
	r.Timeline = w.lanes
	r.set(Fail, "%s", strings.Join(parts, "; "))
}

// survivorWatch is the state of [prober.watchSurvivors].
type survivorWatch struct {
	p         *prober
	out       time.Time // when the sign-out answer arrived
	survivors []credential
	lanes     []Lane
	lastOK    []time.Duration
	refusedAt []time.Duration
}

// round replays each survivor not yet refused once, and returns how many were accepted.
func (w *survivorWatch) round(ctx context.Context) (int, error) {
	live := 0
	for i := range w.survivors {
		if w.refusedAt[i] > 0 {
			continue
		}
		res, err := w.p.replay(ctx, w.survivors[i])
		if err != nil {
			return 0, err
		}
		after := time.Since(w.out)
		w.lanes[i].Marks = append(w.lanes[i].Marks, Mark{After: after.Seconds(), Accepted: res.ok})
		if !res.ok {
			w.refusedAt[i] = after
			continue
		}
		live++
		w.lastOK[i] = after
		if w.survivors[i].refresh != "" {
			w.survivors[i].refresh = res.holder.refresh
		}
	}
	return live, nil
}

// outcome says how long survivor i still authenticated, in words.
func (w *survivorWatch) outcome(i int) string {
	cr := w.survivors[i]
	how := fmt.Sprintf("%s after sign-out, when the watch ended", w.lastOK[i].Round(time.Millisecond))
	if w.refusedAt[i] > 0 {
		how = fmt.Sprintf("%s after sign-out (refused at %s)", w.lastOK[i].Round(time.Millisecond), w.refusedAt[i].Round(time.Millisecond))
	}
	switch {
	case cr.stateless():
		part := "the token (a JSON Web Token) was still accepted " + how + "; a stateless token cannot be ended server-side"
		if exp, ok := jwtExpiry(cr.token); ok {
			part += fmt.Sprintf(", and its exp claim ends it %s after sign-out", exp.Sub(w.out).Round(time.Second))
		}
		return part
	case cr.signsIn:
		return cr.label + " still signed the browser back in " + how
	}
	return cr.label + " still accepted " + how
}
