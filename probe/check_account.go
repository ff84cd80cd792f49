package probe

import (
	"context"
	"fmt"
	"strings"
)

// checkPasswordChange changes the password in one session, checks that the change took
// effect (the new password signs in) and then that every credential of another session
// is refused; then it changes the password back and checks that this took effect too
// (WSTG-ATHN-09).
func checkPasswordChange(ctx context.Context, p *prober, r *Result) {
	if p.t.PasswordChange == nil {
		r.set(Skip, "no password_change request in the target file")
		return
	}
	if !p.otherSessionEnds(ctx, r, p.t.PasswordChange, "password_change", "the password change", p.passwordChanged) {
		return
	}
	if err := p.restorePassword(ctx); err != nil {
		r.set(Error, "%s; then changing the password back failed: %v; %s", r.Detail, err, p.passwordState(ctx))
		return
	}
	r.note("the password was changed back afterwards, and credentials.password signs in again")
}

// passwordChanged checks that a password change took effect: the new password signs in.
func (p *prober) passwordChanged(ctx context.Context) error {
	if err := p.c.signIn(ctx, &session{password: p.t.Credentials.NewPassword}); err != nil {
		return fmt.Errorf("signing in with credentials.new_password failed (%v); %s", err, p.passwordState(ctx))
	}
	return nil
}

// passwordState says which of the two passwords signs in, having tried.
func (p *prober) passwordState(ctx context.Context) string {
	if p.c.signIn(ctx, &session{}) == nil {
		return "credentials.password signs in, so the account's password is credentials.password"
	}
	if p.c.signIn(ctx, &session{password: p.t.Credentials.NewPassword}) == nil {
		return "the account's password is now credentials.new_password"
	}
	return "neither credentials.password nor credentials.new_password signs in"
}

// restorePassword signs in with the new password, changes it back to the old one and
// checks that the old one signs in again.
func (p *prober) restorePassword(ctx context.Context) error {
	s := &session{password: p.t.Credentials.NewPassword, newPassword: p.t.Credentials.Password}
	if err := p.c.signIn(ctx, s); err != nil {
		return fmt.Errorf("signing in with credentials.new_password: %w", err)
	}
	if _, err := p.c.send(ctx, s, p.t.PasswordChange); err != nil {
		return fmt.Errorf("password_change back to credentials.password: %w", err)
	}
	if err := p.c.signIn(ctx, &session{}); err != nil {
		return fmt.Errorf("the change back did not take effect: %w", err)
	}
	return nil
}

// checkLogoutAll signs in twice, signs out everywhere from one session and checks that
// every credential of the other is refused (WSTG-SESS-11).
func checkLogoutAll(ctx context.Context, p *prober, r *Result) {
	if p.t.LogoutAll == nil {
		r.set(Skip, "no logout_all request in the target file")
		return
	}
	p.otherSessionEnds(ctx, r, p.t.LogoutAll, "logout_all", "signing out everywhere", nil)
}

// otherSessionEnds signs in twice, sends req (named name in the target file) from one
// session, checks with took (when not nil) that it took effect, and judges whether every
// credential of the other session was refused after it (after says what happened, for
// the report). It reports false when nothing could be judged: r then holds the error.
func (p *prober) otherSessionEnds(ctx context.Context, r *Result, req *Request, name, after string, took func(context.Context) error) bool {
	other, actor := &session{}, &session{}
	for _, s := range []*session{other, actor} {
		if err := p.c.signIn(ctx, s); err != nil {
			r.set(Error, "%v", err)
			return false
		}
	}
	creds := p.credentials(other)
	ex, err := p.c.send(ctx, actor, req)
	if err != nil {
		r.set(Error, "%s did not take effect, so nothing was judged: %v", name, err)
		return false
	}
	r.note("%s: %s", name, ex.trail())
	if took != nil {
		if err := took(ctx); err != nil {
			r.set(Error, "%s did not take effect (%s), so nothing was judged: %v", name, ex.trail(), err)
			if !req.explicit() {
				r.note("advice: give %s an expect_status, expect_location or expect_body that only a change the app made matches, so that a refusal is recognised at once", name)
			}
			return false
		}
	}
	results, err := p.replayAll(ctx, creds)
	if err != nil {
		r.set(Error, "%v", err)
		return false
	}
	var alive []string
	for _, res := range results {
		r.note("another session's %s", res)
		if !res.ok {
			continue
		}
		what := fmt.Sprintf("its %s was still accepted (%s)", res.label, res.reached.trail())
		switch {
		case res.stateless():
			what = "its token (a JSON Web Token) was still accepted; a stateless token cannot be ended server-side"
		case res.signsIn:
			what = fmt.Sprintf("its %s still signed the browser back in (%s)", res.label, res.reached.trail())
		}
		alive = append(alive, what)
	}
	switch {
	case len(alive) == 0:
		r.set(Pass, "every credential of another session of the account (%d) was refused after %s", len(creds), after)
	case !req.explicit() && took == nil:
		r.set(Error, "after %s, another session of the account still authenticated: %s; but %s answered %s and the target file gives no expect_status, expect_location or expect_body, so the probe cannot tell a request the app refused from one that left the session alive",
			after, strings.Join(alive, "; "), name, ex.trail())
		return false
	default:
		r.set(Fail, "after %s, another session of the account still authenticated: %s", after, strings.Join(alive, "; "))
	}
	return true
}
