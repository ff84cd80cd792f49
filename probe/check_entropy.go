package probe

import (
	"context"
	"strings"
	"sync"
	"time"
)

// checkEntropy signs in many times, half one after another and half at once, and judges
// the session tokens it gets (WSTG-SESS-01).
func checkEntropy(ctx context.Context, p *prober, r *Result) {
	n := p.t.Checks.EntropySamples
	ordered := n / 2
	tokens := make([]string, n)
	errs := make([]error, n)
	sample := func(i int) {
		s := &session{}
		if errs[i] = p.c.signIn(ctx, s); errs[i] == nil {
			tokens[i] = p.c.sessionToken(s)
			if !p.t.Logout.None {
				_, _ = p.c.send(ctx, s, &p.t.Logout.Request) // only tidies up; the verdict does not depend on it
			}
		}
	}
	p.progress(Event{Check: r.ID, Message: "signing in repeatedly"})
	for i := range ordered {
		sample(i)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				sample(i)
			}
		})
	}
	for i := ordered; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
	}
	maxLife := time.Duration(0)
	if a := time.Duration(p.t.Policy.AbsoluteTimeout); a > 0 {
		maxLife = a + p.t.Policy.tolerance()
	}
	a := analyzeTokens(tokens, ordered, time.Now(), maxLife)
	r.Evidence = append(r.Evidence, a.notes...)
	if len(a.problems) > 0 {
		r.Evidence = append(r.Evidence, a.problems...)
		r.set(Fail, "%s", strings.Join(a.problems, "; "))
		return
	}
	if a.jwt {
		r.set(Pass, "%d JSON Web Tokens from separate sign-ins: all different, signed, with an expiry%s; a signed token's strength lies in its key, so its entropy is not estimated", n, a.lifetime)
		return
	}
	r.set(Pass, "%d tokens from separate sign-ins: about %.0f bits of entropy, no repeats, no counter or clock found", n, a.estimate)
}
