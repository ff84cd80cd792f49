package probe

import (
	"context"
	"fmt"
)

// checkPasswordChange changes the password in one session and checks that another
// session of the account ends; then it changes the password back (WSTG-ATHN-09).
func checkPasswordChange(ctx context.Context, p *prober, r *Result) {
	if p.t.PasswordChange == nil {
		r.set(Skip, "no password_change request in the target file")
		return
	}
	if !otherSessionEnds(ctx, p, r, p.t.PasswordChange, "password_change", "the password change") {
		return
	}
	if err := p.restorePassword(ctx); err != nil {
		r.set(Error, "%s; then changing the password back failed, so the account's password is now credentials.new_password: %v", r.Detail, err)
		return
	}
	r.note("the password was changed back afterwards")
}

// restorePassword signs in with the new password and changes it back to the old one.
func (p *prober) restorePassword(ctx context.Context) error {
	s := &session{password: p.t.Credentials.NewPassword, newPassword: p.t.Credentials.Password}
	if err := p.c.signIn(ctx, s); err != nil {
		return fmt.Errorf("signing in with the new password: %w", err)
	}
	_, err := p.c.send(ctx, s, p.t.PasswordChange)
	return err
}

// checkLogoutAll signs in twice, signs out everywhere from one session and checks that
// the other ends (WSTG-SESS-11).
func checkLogoutAll(ctx context.Context, p *prober, r *Result) {
	if p.t.LogoutAll == nil {
		r.set(Skip, "no logout_all request in the target file")
		return
	}
	otherSessionEnds(ctx, p, r, p.t.LogoutAll, "logout_all", "signing out everywhere")
}

// otherSessionEnds signs in twice, sends req (named name in the target
// file) from one session, and judges whether the other was refused after
// it (after says what happened, for the report). It reports false when
// the check could not run: r then holds the error.
func otherSessionEnds(ctx context.Context, p *prober, r *Result, req *Request, name, after string) bool {
	other, actor := &session{}, &session{}
	for _, s := range []*session{other, actor} {
		if err := p.c.signIn(ctx, s); err != nil {
			r.set(Error, "%v", err)
			return false
		}
	}
	if _, err := p.c.send(ctx, actor, req); err != nil {
		r.set(Error, "%s: %v", name, err)
		return false
	}
	ok, ex, err := p.c.accepted(ctx, other)
	switch {
	case err != nil:
		r.set(Error, "%v", err)
	case ok:
		r.set(Fail, "another session of the account was still accepted after %s (%s)", after, ex)
	default:
		r.set(Pass, "another session of the account was refused after %s (%s)", after, ex)
	}
	return true
}
