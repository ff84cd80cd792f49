package probe

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
)

// checkFixation checks that a session id set before sign-in is not the one in use after
// it, and that a planted id is not adopted (WSTG-SESS-03).
func checkFixation(ctx context.Context, p *prober, r *Result) {
	name := p.t.Session.Cookie
	switch {
	case p.t.Session.Token != nil:
		r.set(Skip, "the session is a token from the sign-in answer, not a cookie: there is no id to fix before sign-in")
		return
	case name == "":
		r.set(Skip, "session.cookie is not set: there is no one session id to fix before sign-in")
		return
	}
	var failed []string

	// A session id the target itself issues before sign-in.
	s := &session{}
	page := p.t.Login.URL
	if c := p.t.Login.CSRF; c != nil {
		page = c.URL
	}
	u, err := p.c.base.Parse(page)
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	if _, err := p.c.do(ctx, s, http.MethodGet, u, nil, nil, true); err != nil {
		r.set(Error, "%v", err)
		return
	}
	before := s.cookie(name)
	if err := p.c.signIn(ctx, s); err != nil {
		r.set(Error, "%v", err)
		return
	}
	after := s.cookie(name)
	switch {
	case before == nil:
		r.note("GET %s set no %s cookie before sign-in", u.Path, name)
	case before.Value == after.Value:
		failed = append(failed, "the session id issued before sign-in is still the one in use after it")
		r.note("before and after sign-in: %s %s", name, redact(after.Value))
	default:
		r.note("before sign-in: %s %s; after: %s", name, redact(before.Value), redact(after.Value))
		ok, _, err := p.c.accepted(ctx, credential{cookies: []*http.Cookie{before}}.holder())
		if err != nil {
			r.set(Error, "%v", err)
			return
		}
		if ok {
			failed = append(failed, "the session id issued before sign-in is accepted after it")
		}
	}

	// A made-up id of the same shape, planted before sign-in.
	planted := plantLike(after.Value)
	pl := &session{}
	pl.hold(&http.Cookie{Name: name, Value: planted})
	if err := p.c.signIn(ctx, pl); err != nil {
		r.set(Error, "signing in with a planted session id: %v", err)
		return
	}
	ok, _, err := p.c.accepted(ctx, credential{cookies: []*http.Cookie{{Name: name, Value: planted}}}.holder())
	if err != nil {
		r.set(Error, "%v", err)
		return
	}
	r.note("planted %s %s before sign-in; after it: %s", name, redact(planted), redact(pl.cookie(name).Value))
	if ok {
		failed = append(failed, "a made-up session id planted before sign-in was adopted and is accepted after it")
	}
	if len(failed) > 0 {
		r.set(Fail, "%s", strings.Join(failed, "; "))
		return
	}
	r.set(Pass, "sign-in issues a new session id and neither the earlier nor a planted one is accepted")
}

// plantLike makes up a value shaped like v: each character drawn from v's alphabet is
// replaced by a random one from it, others are kept.
func plantLike(v string) string {
	a := alphabetOf([]string{v})
	b := []byte(v)
	for i, c := range b {
		if strings.IndexByte(a.chars, c) >= 0 {
			b[i] = a.chars[rand.IntN(len(a.chars))]
		}
	}
	return string(b)
}
