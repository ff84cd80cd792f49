package lapse

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Second factors lapse keeps itself, for platforms without MFA of their
// own: a [FactorService] (package totp) checks one-time codes from an
// authenticator app and single-use recovery codes, a [PasskeyService]
// (package passkey) runs WebAuthn ceremonies with passkeys, both keep
// what they need in a store that implements [FactorStore], and a session
// steps up with a code through [StepUpWithFactor]. A platform with its
// own MFA does not need any of this: it verifies its factor and calls
// [Manager.StepUp].

// Factors a subject may step up with, as a step_up_required problem lists
// them.
const (
	FactorTOTP         = "totp"
	FactorRecoveryCode = "recovery_code"
	FactorPasskey      = "passkey"
)

// Authentication methods (RFC 8176 "amr" values) a built-in factor adds to
// a session it steps up. RFC 8176 has no value for a recovery code (a NIST
// "look-up secret"), so lapse records its own.
const (
	MethodOTP          = "otp"
	MethodRecoveryCode = "recovery_code"
)

// Error codes of the built-in factors.
const (
	// CodeFactorNotFound: the subject has no such factor, no enrolment
	// awaiting confirmation, or no recovery code left.
	CodeFactorNotFound Code = "factor_not_found"
	// CodeRejected: the one-time or recovery code is wrong, or is not of
	// the current time window.
	CodeRejected Code = "code_rejected"
	// CodeReused: the code is right but its time step, or a newer one, was
	// already used: a replay.
	CodeReused Code = "code_reused"
	// CodeTooManyAttempts: too many failed attempts recently. The error wraps
	// a [*RetryError] that says when to try again.
	CodeTooManyAttempts Code = "too_many_attempts"
)

// RetryError is the cause of a [CodeTooManyAttempts] error: the next
// attempt may be made at At.
type RetryError struct{ At time.Time }

func (e *RetryError) Error() string { return "retry at " + e.At.UTC().Format(time.RFC3339Nano) }

// TOTPFactor is a subject's TOTP authenticator (RFC 6238) as a
// [FactorStore] keeps it.
type TOTPFactor struct {
	// ID is new for each enrolment, so that a confirmation or a use can
	// tell that the factor it checked a code against is still the one
	// stored.
	ID      string
	Subject string
	// Secret is the shared secret sealed (encrypted and authenticated) by
	// the factor service; the store keeps it as opaque bytes and never
	// holds the key that opens it.
	Secret    []byte
	CreatedAt time.Time
	// ConfirmedAt is when a first code confirmed the enrolment; zero while
	// it awaits one. An unconfirmed factor cannot step a session up.
	ConfirmedAt time.Time
	// LastStep is the newest time step (Unix time / period) a code was
	// accepted for: a code of this step or an older one is a replay.
	LastStep   int64
	LastUsedAt time.Time
}

// Confirmed reports whether a first code confirmed the enrolment.
func (f *TOTPFactor) Confirmed() bool { return !f.ConfirmedAt.IsZero() }

// FactorState is what a subject has enrolled.
type FactorState struct {
	// TOTP is the subject's TOTP factor, confirmed or not; nil if none.
	TOTP *TOTPFactor
	// RecoveryCodes is how many unused recovery codes are left.
	RecoveryCodes int
	// Passkeys is how many passkeys the subject has registered.
	Passkeys int
}

// Available returns the factors the subject can step up with now, the
// phishing-resistant one first: [FactorPasskey] with a registered
// passkey, [FactorTOTP] with a confirmed TOTP factor and
// [FactorRecoveryCode] while unused codes of that factor remain. It is
// never nil, so that "none" shows as an empty list.
func (f *FactorState) Available() []string {
	out := []string{}
	if f.Passkeys > 0 {
		out = append(out, FactorPasskey)
	}
	if f.TOTP != nil && f.TOTP.Confirmed() {
		out = append(out, FactorTOTP)
		if f.RecoveryCodes > 0 {
			out = append(out, FactorRecoveryCode)
		}
	}
	return out
}

// Attempt is one try of a code for a subject's factor from a session,
// counted for rate limiting and kept as a record.
type Attempt struct {
	Subject   string
	SessionID string
	Factor    string // FactorTOTP or FactorRecoveryCode
	Now       time.Time
}

// AttemptLimit caps the attempts that did not succeed within a sliding
// window, per subject and per session; a limit of 0 is no limit.
type AttemptLimit struct {
	Window     time.Duration
	PerSubject int
	PerSession int
}

// orDefaults returns l with the built-in factors' defaults for its zero
// fields: a 5-minute window, 5 attempts per session and 10 per subject,
// so that one session (perhaps a stolen one) gets 5 tries and the
// subject 10 over all of its sessions.
func (l AttemptLimit) orDefaults() AttemptLimit {
	if l.Window == 0 {
		l.Window = 5 * time.Minute
	}
	if l.PerSession == 0 {
		l.PerSession = 5
	}
	if l.PerSubject == 0 {
		l.PerSubject = 10
	}
	return l
}

// BeginAttempt records attempt a of a built-in factor in fs under l (its
// zero fields meaning the defaults: 5 minutes, 5 per session, 10 per
// subject) and returns its id, or fails with [CodeTooManyAttempts],
// wrapping a [*RetryError], past the limit.
func BeginAttempt(ctx context.Context, fs FactorStore, a Attempt, l AttemptLimit) (int64, error) {
	id, retryAt, err := fs.BeginAttempt(ctx, a, l.orDefaults())
	if err != nil {
		return 0, err
	}
	if !retryAt.IsZero() {
		return 0, &Error{Code: CodeTooManyAttempts,
			Message: fmt.Sprintf("too many failed attempts; try again in %v", retryAt.Sub(a.Now).Round(time.Second)),
			Err:     &RetryError{At: retryAt}}
	}
	return id, nil
}

// FactorStoreOf returns fs, or, when it is nil, m's store if that keeps
// factors; otherwise it fails with [CodeInvalid], naming caller.
func FactorStoreOf(m *Manager, fs FactorStore, caller string) (FactorStore, error) {
	if fs != nil {
		return fs, nil
	}
	fs, ok := m.Store().(FactorStore)
	if !ok {
		return nil, Errorf(CodeInvalid, "%s: the store %T does not keep factors", caller, m.Store())
	}
	return fs, nil
}

// AttemptOutcome is how an attempt ended.
type AttemptOutcome string

// Attempt outcomes. Every outcome but accepted counts against the limit,
// pending included: an attempt whose end was never recorded counts as
// failed.
const (
	AttemptPending  AttemptOutcome = "pending"
	AttemptAccepted AttemptOutcome = "accepted"
	AttemptRejected AttemptOutcome = "rejected"
	AttemptReused   AttemptOutcome = "reused"
)

// FactorStore is implemented by stores that keep the built-in second
// factors: TOTP factors, hashed recovery codes and the record of
// attempts. It is an optional interface, found by type assertion on a
// [Store]; a store without it serves no built-in factor. Factors belong
// to a subject across all tenants.
//
// Every method is one atomic step. Methods fail with [CodeFactorNotFound]
// as each says, [CodeConflict] as each says, and [CodeStoreUnavailable]
// when the backing service fails. The passkey methods are in
// [PasskeyStore], which a FactorStore includes.
type FactorStore interface {
	PasskeyStore

	// Factors returns what subject has enrolled; a subject with nothing
	// gets an empty state, not an error.
	Factors(ctx context.Context, subject string) (*FactorState, error)

	// PutTOTP stores f as its subject's TOTP enrolment awaiting
	// confirmation, replacing one that awaits. It fails with
	// [CodeConflict] if the subject has a confirmed TOTP factor.
	PutTOTP(ctx context.Context, f *TOTPFactor) error

	// ConfirmTOTP confirms the subject's enrolment with the given id at
	// now, records step as its last used step, and replaces the subject's
	// recovery codes with the given hashes. It fails with
	// [CodeFactorNotFound] if no enrolment with that id is stored, and
	// [CodeConflict] if it is already confirmed.
	ConfirmTOTP(ctx context.Context, subject, id string, step int64, recovery []TokenHash, now time.Time) error

	// UseTOTPStep records that a code of step was accepted at now for the
	// subject's confirmed factor with the given id, if step is newer than
	// its last used step; otherwise it changes nothing and returns false:
	// a replay. It fails with [CodeFactorNotFound] if no confirmed factor
	// with that id is stored.
	UseTOTPStep(ctx context.Context, subject, id string, step int64, now time.Time) (bool, error)

	// UseRecoveryCode marks the subject's unused recovery code whose hash
	// is h as used at now, and returns false if there is none.
	UseRecoveryCode(ctx context.Context, subject string, h TokenHash, now time.Time) (bool, error)

	// RemoveTOTP deletes the subject's TOTP factor, confirmed or not, and
	// its recovery codes. It fails with [CodeFactorNotFound] if there is
	// none.
	RemoveTOTP(ctx context.Context, subject string) error

	// BeginAttempt records a as pending and returns its id, unless the
	// attempts of a's subject, or of a's session, that were not accepted
	// within l.Window before a.Now already reach l's limit: then it
	// records nothing and returns when the oldest of them leaves the
	// window, the earliest time another attempt may be made.
	BeginAttempt(ctx context.Context, a Attempt, l AttemptLimit) (id int64, retryAt time.Time, err error)

	// FinishAttempt records the outcome of the attempt with the given id.
	FinishAttempt(ctx context.Context, id int64, outcome AttemptOutcome) error
}

// TOTPParams name the account in an authenticator app.
type TOTPParams struct {
	// Account is the account's label in the app; "" means the subject.
	Account string
	// Issuer is the service's name in the app; "" means the factor
	// service's default.
	Issuer string
}

// TOTPEnrolment is what a subject needs to add a new TOTP factor to an
// authenticator app. It holds the secret: show it to the subject once.
type TOTPEnrolment struct {
	// Secret is the shared secret in base32, for typing into an app.
	Secret string
	// URI is the otpauth:// key URI, which the QR code encodes.
	URI string
	// QRCode is a PNG image of URI.
	QRCode []byte
	// ConfirmBy is when the enrolment lapses if no code confirmed it.
	ConfirmBy time.Time
}

// FactorService is a second factor lapse runs itself. The HTTP API's
// factor routes call it; package totp implements it with authenticator
// apps and recovery codes.
//
// Methods that take a session expect one the caller has just found valid
// ([Manager.Current], [Manager.Verify] or the middleware) and act for its
// subject.
type FactorService interface {
	// Factors returns what subject has enrolled, without secrets.
	Factors(ctx context.Context, subject string) (*FactorState, error)
	// EnrolTOTP starts a TOTP enrolment for s's subject. It fails with
	// [CodeStepUpRequired] if s's authentication is not recent, and
	// [CodeConflict] if the subject already has a confirmed factor.
	EnrolTOTP(ctx context.Context, s *Session, p TOTPParams) (*TOTPEnrolment, error)
	// ConfirmTOTP confirms s's subject's enrolment with a first code and
	// returns fresh recovery codes, which lapse keeps only hashed.
	ConfirmTOTP(ctx context.Context, s *Session, code string) (recoveryCodes []string, err error)
	// Check accepts code, a one-time code or a recovery code, for s's
	// subject once, and returns the authentication method it proves
	// ([MethodOTP] or [MethodRecoveryCode]). It fails with [CodeInvalid],
	// [CodeFactorNotFound], [CodeRejected], [CodeReused] or
	// [CodeTooManyAttempts].
	Check(ctx context.Context, s *Session, code string) (method string, err error)
	// RemoveTOTP removes s's subject's TOTP factor and recovery codes. It
	// fails with [CodeStepUpRequired] unless s was stepped up to AAL2
	// recently.
	RemoveTOTP(ctx context.Context, s *Session) error
}

// FactorAssurance returns the assurance level and methods s has after a
// step-up with a built-in factor that proved methods (one for a code,
// several for a passkey): at least AAL2 (the factor is a second one on
// top of the authentication that started the session) and each method
// added to its AMR once.
func FactorAssurance(s *Session, methods ...string) (aal int, amr []string) {
	amr = slices.Clone(s.AMR)
	for _, m := range methods {
		if !slices.Contains(amr, m) && len(amr) < MaxAMR {
			amr = append(amr, m)
		}
	}
	return max(2, s.AAL), amr
}

// StepUpWithFactor steps token's session up with a code of its subject's
// built-in factor: fs accepts the code (once), then [Manager.StepUp]
// rotates the token and raises the session as [FactorAssurance] says. It
// fails like [Manager.Current] for a token that is not valid, with
// [CodeSessionNotFound] for a token a step-up already replaced (before
// the code is spent), like [FactorService.Check], and like
// [Manager.StepUp].
func StepUpWithFactor(ctx context.Context, m *Manager, fs FactorService, token, code, actor string) (Token, *Session, error) {
	s, err := m.Current(ctx, token)
	if err != nil {
		return "", nil, err
	}
	if s.TokenHash != Token(token).Hash() {
		return "", nil, Errorf(CodeSessionNotFound, "this token was already replaced by a step-up")
	}
	method, err := fs.Check(ctx, &s, code)
	if err != nil {
		return "", nil, err
	}
	aal, amr := FactorAssurance(&s, method)
	return m.StepUp(ctx, token, aal, amr, actor)
}

// RecentFactorChange checks that s may change its subject's factors at
// now: it authenticated within d, at aal or above (0 or 1 for any). A
// subject without a factor enrols one after a recent sign-in; one with
// a factor changes them only after a recent step-up with it (ASVS 5.0
// 7.5.1), so that a stolen password alone cannot add a factor. It fails
// with [CodeStepUpRequired] and the requirement otherwise.
func RecentFactorChange(s *Session, aal int, d time.Duration, now time.Time) error {
	if s.AAL >= aal && now.Before(s.AuthenticatedAt.Add(d)) {
		return nil
	}
	msg := "changing a factor needs a recent authentication"
	if aal > 1 {
		msg = fmt.Sprintf("changing a factor needs a step-up to AAL%d within the last %v", aal, d)
	}
	return &Error{Code: CodeStepUpRequired, Message: msg, Requirement: &Requirement{
		RequiredAAL: aal, MaxAuthAge: d, AAL: s.AAL, AuthenticatedAt: s.AuthenticatedAt,
	}}
}
