package console

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/password"
	"github.com/lapsehq/lapse/throttle"
)

// Factors checks the one-time codes of named operators: a
// [lapse.FactorService] such as totp's. An operator's factor is kept
// under the subject [SubjectOf]([lapse.Operator.Actor]), which no
// platform call reaches.
type Factors interface {
	Check(ctx context.Context, s *lapse.Session, code string) (method string, err error)
}

// wrongCredentials is the one answer to every failed operator sign-in, so
// that the page says nothing of which part was wrong or whether the name
// exists.
const wrongCredentials = "Wrong name, password or code."

// errWrongCredentials is the error of a sign-in refused for what was
// typed (not for a failure of the server).
var errWrongCredentials = errors.New("console: wrong name, password or code")

// The per-name throttle: a name gets 10 failures in a row, then one
// more every 30 s, whatever address they come from. It counts every
// name typed, an operator's or not, so being throttled says nothing of
// whether a name exists.
const (
	nameBurst = 10
	nameEvery = 30 * time.Second
)

// nameSource is the address under which the per-name throttle counts
// name: the first 64 bits of its SHA-256 as an IPv6 /64, the unit a
// [throttle.Limiter] counts by.
func nameSource(name string) netip.Addr {
	h := sha256.Sum256([]byte("lapse console operator name\x00" + name))
	var a [16]byte
	copy(a[:8], h[:8])
	return netip.AddrFrom16(a)
}

// signInOperator checks a name, password and one-time code and opens a
// console session for the operator they name. Every refusal shows the
// same message and is recorded; a store failure is an error page.
func (c *Console) signInOperator(w http.ResponseWriter, r *http.Request, next string, client netip.Addr) {
	name := r.PostFormValue("name")
	if wait, ok := c.names.Allow(nameSource(name)); !ok {
		w.Header().Set("Retry-After", throttle.RetryAfter(wait))
		c.showSignIn(w, r, http.StatusTooManyRequests, next,
			fmt.Sprintf("Too many failed sign-ins. Try again in %s.", wait.Round(time.Second)))
		return
	}
	// Each check costs argon2id's memory (19 MiB) and tens of
	// milliseconds of a core, and the throttles count a failure only
	// once it is checked: at most one check per core runs at once, and a
	// sign-in past that is turned away before it costs anything.
	select {
	case c.hashing <- struct{}{}:
		defer func() { <-c.hashing }()
	default:
		w.Header().Set("Retry-After", "1")
		c.showSignIn(w, r, http.StatusServiceUnavailable, next, "The console is busy checking other sign-ins. Try again in a moment.")
		return
	}
	o, actor, err := c.checkOperator(r.Context(), name, r.PostFormValue("password"), r.PostFormValue("code"))
	if errors.Is(err, errWrongCredentials) {
		c.throttle.Fail(client)
		c.names.Fail(nameSource(name))
		c.record(r, lapse.Event{Type: lapse.EventOperatorSignInFailed, Reason: lapse.ReasonInvalidCredentials, Actor: actor}, client)
		c.showSignIn(w, r, http.StatusUnauthorized, next, wrongCredentials)
		return
	}
	if err == nil {
		who := Identity{Actor: o.Actor(), Name: o.Name, Role: Role(o.Role), Tenant: o.Tenant}
		err = c.open(w, r, who, lapse.CreateParams{AAL: 2, AMR: []string{"pwd", "otp"}}, client)
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// checkOperator returns the operator whom name, pw and code prove, or
// errWrongCredentials with the actor to record the failure under: the
// operator's when the name is one, [Actor] otherwise. An unknown name
// costs the same password hashing as a known one. The code is checked
// only after the password, so that guessing passwords spends none of the
// operator's code attempts.
func (c *Console) checkOperator(ctx context.Context, name, pw, code string) (*lapse.Operator, string, error) {
	if len(name) > lapse.MaxOperatorName || len(pw) > password.MaxLength {
		password.VerifyDummy(pw[:min(len(pw), password.MaxLength)])
		return nil, Actor, errWrongCredentials
	}
	o, err := c.ops.OperatorByName(ctx, name)
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodeOperatorNotFound:
		password.VerifyDummy(pw)
		return nil, Actor, errWrongCredentials
	default:
		return nil, "", err
	}
	ok, err := password.Verify(o.PasswordHash, pw)
	if err != nil {
		c.log.Error("console: an operator's password hash is unreadable", "operator", o.ID, "err", err)
	}
	if !ok || o.Disabled() || !Role(o.Role).Valid() {
		return nil, o.Actor(), errWrongCredentials
	}
	// The attempt's session id is the operator's own, so that the factor
	// service's per-session limit counts this operator's sign-ins.
	subject := SubjectOf(o.Actor())
	_, err = c.factors.Check(ctx, &lapse.Session{ID: subject, Subject: subject}, code)
	switch lapse.ErrorCode(err) {
	case "":
		return o, o.Actor(), nil
	case lapse.CodeInvalid, lapse.CodeRejected, lapse.CodeReused, lapse.CodeFactorNotFound, lapse.CodeTooManyAttempts:
		return nil, o.Actor(), errWrongCredentials
	}
	return nil, "", err
}

// record records ev, an event of no platform session, from client; a
// failure to record it is logged.
func (c *Console) record(r *http.Request, ev lapse.Event, client netip.Addr) {
	if client.IsValid() {
		ev.IP = client.String()
	}
	if err := c.m.Record(r.Context(), ev); err != nil && lapse.ErrorCode(err) != lapse.CodeInvalid {
		c.log.Error("console: recording an event", "type", ev.Type, "err", err)
	}
}
