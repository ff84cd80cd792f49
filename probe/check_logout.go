package probe

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// checkLogout signs out and replays, each on its own, every credential the sign-in
// produced; any that is still accepted fails the check, and is then watched to report
// how long it stays usable (WSTG-SESS-06).
func checkLogout(ctx context.Context, p *prober, r *Result) {
	s := &session{}
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	creds, err := p.c.credentials(ctx, s)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	s.record = true
	if _, err := p.c.send(ctx, s, &p.t.Logout); err != nil {
		r.set(Error, "logout: %v", err)
		return
	}
	out := s.lastUsed
	for _, ex := range s.log {
		if v := ex.header.Get("Clear-Site-Data"); v != "" {
			r.note("the sign-out answer sends Clear-Site-Data: %s", v)
		}
	}
	for _, cr := range creds {
		if len(cr.cookies) == 1 {
			if c := s.cookie(cr.cookies[0].Name); c != nil && c.Value == cr.cookies[0].Value {
				r.note("the sign-out answer did not clear cookie %s", c.Name)
			}
		}
	}
	var survivors []credential
	for _, cr := range creds {
		h, ok, err := p.c.replay(ctx, cr)
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
		if !ok {
			r.note("refused after sign-out: %s", cr)
			continue
		}
		if cr.refresh != "" {
			cr.refresh = h.refresh
		}
		survivors = append(survivors, cr)
	}
	if len(survivors) == 0 {
		r.set(Pass, "all %d credential(s) the sign-in produced were refused after sign-out", len(creds))
		return
	}
	p.watchSurvivors(ctx, r, survivors, out)
}

// watchSurvivors replays credentials that outlived sign-out until each is refused or the
// watch ends, and fails the check saying how long each was still accepted.
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
	lanes := make([]Lane, len(survivors))
	lastOK := make([]time.Duration, len(survivors))
	refusedAt := make([]time.Duration, len(survivors))
	for i, cr := range survivors {
		lanes[i] = Lane{Label: cr.label + " after sign-out", Start: out, Marks: []Mark{{After: time.Since(out).Seconds(), Accepted: true}}}
		lastOK[i] = time.Since(out)
	}
	p.progress(Event{Check: r.ID, Message: fmt.Sprintf("replaying %d credential(s) that outlived sign-out", len(survivors)), Until: out.Add(watch)})
	for next := out.Add(every); time.Since(out) < watch; next = next.Add(every) {
		if err := sleepUntil(ctx, next); err != nil {
			return
		}
		live := 0
		for i := range survivors {
			if refusedAt[i] > 0 {
				continue
			}
			h, ok, err := p.c.replay(ctx, survivors[i])
			if err != nil {
				r.set(Error, "%v", err)
				return
			}
			after := time.Since(out)
			lanes[i].Marks = append(lanes[i].Marks, Mark{After: after.Seconds(), Accepted: ok})
			if !ok {
				refusedAt[i] = after
				continue
			}
			live++
			lastOK[i] = after
			if survivors[i].refresh != "" {
				survivors[i].refresh = h.refresh
			}
		}
		if live == 0 {
			break
		}
	}
	var parts []string
	for i, cr := range survivors {
		how := fmt.Sprintf("still accepted %s after sign-out, when the watch ended", lastOK[i].Round(time.Millisecond))
		if refusedAt[i] > 0 {
			how = fmt.Sprintf("accepted for %s after sign-out, refused at %s", lastOK[i].Round(time.Millisecond), refusedAt[i].Round(time.Millisecond))
		}
		r.note("survived sign-out: %s: %s", cr, how)
		parts = append(parts, cr.label+" "+how)
	}
	r.Timeline = lanes
	r.set(Fail, "sign-out left the server-side session alive: %s", strings.Join(parts, "; "))
}
