// Package totp is lapse's built-in second factor, for platforms without
// MFA of their own: time-based one-time passwords (RFC 6238) from an
// authenticator app, and single-use recovery codes. [Service] implements
// [lapse.FactorService]; the codes step a session up through
// [lapse.StepUpWithFactor] (or, in a Go app behind lapse's middleware,
// [Service.Check] followed by the middleware's StepUp).
//
// Codes are the common authenticator-app profile: HMAC-SHA1, 6 digits, a
// 30-second period, with one step of clock skew either way. A code is
// accepted once: the newest accepted time step is kept per subject, and a
// code of that step or an older one is refused, within the skew window
// too. Secrets are sealed with AES-256-GCM under a key the store never
// holds, bound to their subject. Attempts that do not succeed are
// limited per subject and per session within a sliding window, and every
// attempt is recorded by the store.
package totp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lapsehq/lapse"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	pqtotp "github.com/pquerna/otp/totp"
)

// The code profile: what authenticator apps support everywhere.
const (
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Digits is the length of a code.
	Digits = 6
	// Skew is how many steps before and after the current one are
	// accepted, for clocks that disagree a little.
	Skew = 1
	// SecretSize is the size of a secret in bytes (160 bits, as RFC 4226
	// recommends).
	SecretSize = 20
	// RecoveryCodes is how many recovery codes a confirmation issues.
	RecoveryCodes = 10
	// KeySize is the size of the key that seals secrets (AES-256).
	KeySize = 32
)

// Config configures a [Service]. Manager and Key are required; every
// other zero value is a documented default.
type Config struct {
	// Manager steps sessions up and tells the time.
	Manager *lapse.Manager
	// Store keeps the factors; nil means Manager's store, which must then
	// implement [lapse.FactorStore].
	Store lapse.FactorStore
	// Key seals the secrets at rest: KeySize random bytes, kept outside
	// the store. Losing it loses every enrolled factor; changing it makes
	// them fail to open.
	Key []byte
	// Issuer names the service in authenticator apps; "" means "lapse".
	Issuer string
	// Limit caps the attempts that do not succeed. A zero Window means 5
	// minutes, a zero PerSession 5 and a zero PerSubject 10: one session
	// (perhaps a stolen one) gets 5 tries, and the subject 10 over all of
	// its sessions.
	Limit lapse.AttemptLimit
	// RecentAuth is how recent a session's authentication must be to
	// enrol a factor, and its AAL2 step-up to remove one (ASVS 5.0
	// 7.5.1); 0 means 15 minutes.
	RecentAuth time.Duration
	// EnrolTTL is how long an enrolment awaits its first code; 0 means
	// 10 minutes.
	EnrolTTL time.Duration
}

// Service is the built-in TOTP factor. It is safe for concurrent use.
type Service struct {
	m          *lapse.Manager
	store      lapse.FactorStore
	aead       cipher.AEAD
	issuer     string
	limit      lapse.AttemptLimit
	recentAuth time.Duration
	enrolTTL   time.Duration
}

var _ lapse.FactorService = (*Service)(nil)

// New returns a service for cfg. It fails if Manager or Key is missing,
// if Key is not KeySize bytes, or if no store keeps factors.
func New(cfg Config) (*Service, error) {
	if cfg.Manager == nil {
		return nil, lapse.Errorf(lapse.CodeInvalid, "totp.New: Config.Manager is required")
	}
	if len(cfg.Key) != KeySize {
		return nil, lapse.Errorf(lapse.CodeInvalid, "totp.New: Config.Key must be %d bytes, got %d", KeySize, len(cfg.Key))
	}
	store, err := lapse.FactorStoreOf(cfg.Manager, cfg.Store, "totp.New")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cfg.Key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &Service{
		m: cfg.Manager, store: store, aead: aead, issuer: cfg.Issuer, limit: cfg.Limit,
		recentAuth: cfg.RecentAuth, enrolTTL: cfg.EnrolTTL,
	}
	if s.issuer == "" {
		s.issuer = "lapse"
	}
	if s.recentAuth == 0 {
		s.recentAuth = 15 * time.Minute
	}
	if s.enrolTTL == 0 {
		s.enrolTTL = 10 * time.Minute
	}
	return s, nil
}

// Factors implements [lapse.FactorService]: what subject has enrolled,
// with the sealed secret left out.
func (s *Service) Factors(ctx context.Context, subject string) (*lapse.FactorState, error) {
	st, err := s.store.Factors(ctx, subject)
	if err != nil {
		return nil, err
	}
	if st.TOTP != nil {
		st.TOTP.Secret = nil
	}
	return st, nil
}

// EnrolTOTP implements [lapse.FactorService]: it makes a new secret for
// sess's subject, stores it sealed and awaiting confirmation (replacing
// an enrolment that awaits), and returns it with its otpauth:// URI and
// a QR code of it. sess must have authenticated within RecentAuth (and,
// when the subject has passkeys, stepped up to AAL2 within it), otherwise
// it fails with [lapse.CodeStepUpRequired]. It fails with
// [lapse.CodeInvalid] for an unusable account or issuer name and
// [lapse.CodeConflict] if the subject has a confirmed factor.
func (s *Service) EnrolTOTP(ctx context.Context, sess *lapse.Session, p lapse.TOTPParams) (*lapse.TOTPEnrolment, error) {
	now := s.m.Clock().Now()
	if err := s.enrolAllowed(ctx, sess, now); err != nil {
		return nil, err
	}
	f, enrolment, err := s.newFactor(sess.Subject, p, now)
	if err != nil {
		return nil, err
	}
	if err := s.store.PutTOTP(ctx, f); err != nil {
		return nil, err
	}
	return enrolment, nil
}

// Provision enrols a TOTP factor for subject and confirms it at once,
// for a caller that has established who the person is by other means
// (lapse operators create, run by whoever runs the server): there is no
// session to check and no first code to wait for. It returns the
// enrolment, to be shown once, and fresh recovery codes. Every code of
// the current window is still unused. It fails with [lapse.CodeInvalid]
// for an unusable account or issuer name and [lapse.CodeConflict] if the
// subject has a confirmed factor.
func (s *Service) Provision(ctx context.Context, subject string, p lapse.TOTPParams) (*lapse.TOTPEnrolment, []string, error) {
	now := s.m.Clock().Now()
	f, enrolment, err := s.newFactor(subject, p, now)
	if err != nil {
		return nil, nil, err
	}
	if err := s.store.PutTOTP(ctx, f); err != nil {
		return nil, nil, err
	}
	codes, hashes := newRecoveryCodes(subject)
	if err := s.store.ConfirmTOTP(ctx, subject, f.ID, Step(now)-Skew-1, hashes, now); err != nil {
		return nil, nil, err
	}
	enrolment.ConfirmBy = time.Time{}
	return enrolment, codes, nil
}

// newFactor makes a new secret for subject, sealed in a factor awaiting
// confirmation, and the enrolment that shows it.
func (s *Service) newFactor(subject string, p lapse.TOTPParams, now time.Time) (*lapse.TOTPFactor, *lapse.TOTPEnrolment, error) {
	if p.Account == "" {
		p.Account = subject
	}
	if p.Issuer == "" {
		p.Issuer = s.issuer
	}
	for what, v := range map[string]string{"account": p.Account, "issuer": p.Issuer} {
		if len(v) > 128 || !labelChars(v) {
			return nil, nil, lapse.Errorf(lapse.CodeInvalid, "%s must be at most 128 printable characters without ':'", what)
		}
	}
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer: p.Issuer, AccountName: p.Account, Period: uint(Period / time.Second),
		SecretSize: SecretSize, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: rand.Reader,
	})
	if err != nil {
		return nil, nil, err
	}
	secret, err := b32.DecodeString(key.Secret())
	if err != nil {
		return nil, nil, err
	}
	f := &lapse.TOTPFactor{ID: lapse.NewID("fac_"), Subject: subject, Secret: s.seal(subject, secret), CreatedAt: now}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, nil, err
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return nil, nil, err
	}
	return f, &lapse.TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QRCode: qr.Bytes(), ConfirmBy: now.Add(s.enrolTTL)}, nil
}

// labelChars reports whether v may name an account or issuer in a key
// URI: printable, and without the ':' that separates the two.
func labelChars(v string) bool {
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r == ':' {
			return false
		}
	}
	return utf8.ValidString(v)
}

// ConfirmTOTP implements [lapse.FactorService]: a first code from the app
// confirms the enrolment of sess's subject, its time step counts as used,
// and RecoveryCodes fresh recovery codes are returned, to be shown once;
// the store keeps only their hashes. It fails with [lapse.CodeInvalid]
// for a code that is not 6 digits, [lapse.CodeFactorNotFound] when no
// enrolment awaits (or it lapsed after EnrolTTL), [lapse.CodeConflict]
// when the factor is already confirmed, [lapse.CodeTooManyAttempts] and
// [lapse.CodeRejected].
func (s *Service) ConfirmTOTP(ctx context.Context, sess *lapse.Session, code string) ([]string, error) {
	code, ok := totpCode(code)
	if !ok {
		return nil, lapse.Errorf(lapse.CodeInvalid, "code must be the %d digits the authenticator app shows", Digits)
	}
	now := s.m.Clock().Now()
	st, err := s.store.Factors(ctx, sess.Subject)
	switch {
	case err != nil:
		return nil, err
	case st.TOTP == nil:
		return nil, lapse.Errorf(lapse.CodeFactorNotFound, "no TOTP enrolment awaits confirmation; enrol first")
	case st.TOTP.Confirmed():
		return nil, lapse.Errorf(lapse.CodeConflict, "the TOTP factor is already confirmed")
	case !now.Before(st.TOTP.CreatedAt.Add(s.enrolTTL)):
		return nil, lapse.Errorf(lapse.CodeFactorNotFound, "the enrolment lapsed after %v without a code; enrol again", s.enrolTTL)
	}
	id, err := s.begin(ctx, sess, lapse.FactorTOTP, now)
	if err != nil {
		return nil, err
	}
	step, ok, err := s.match(st.TOTP, code, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		s.finish(ctx, id, lapse.AttemptRejected)
		return nil, errRejected
	}
	codes, hashes := newRecoveryCodes(sess.Subject)
	if err := s.store.ConfirmTOTP(ctx, sess.Subject, st.TOTP.ID, step, hashes, now); err != nil {
		return nil, err
	}
	s.finish(ctx, id, lapse.AttemptAccepted)
	return codes, nil
}

// Check implements [lapse.FactorService]: it accepts code once for sess's
// subject, a code from the app (giving [lapse.MethodOTP]) or a recovery
// code (giving [lapse.MethodRecoveryCode]). Each attempt is counted and
// recorded; past the limit it fails with [lapse.CodeTooManyAttempts]
// before looking at the code. It fails with [lapse.CodeInvalid] for a
// code of neither shape (not counted), [lapse.CodeFactorNotFound] when
// the subject has no confirmed factor or no recovery code left,
// [lapse.CodeRejected] for a wrong code and [lapse.CodeReused] for a
// code whose time step (or a newer one) was already used.
func (s *Service) Check(ctx context.Context, sess *lapse.Session, code string) (string, error) {
	otpCode, isOTP := totpCode(code)
	recovery, isRecovery := recoveryCode(code)
	if !isOTP && !isRecovery {
		return "", lapse.Errorf(lapse.CodeInvalid, "code must be the %d digits the authenticator app shows, or a recovery code", Digits)
	}
	now := s.m.Clock().Now()
	st, err := s.store.Factors(ctx, sess.Subject)
	switch {
	case err != nil:
		return "", err
	case st.TOTP == nil || !st.TOTP.Confirmed():
		return "", lapse.Errorf(lapse.CodeFactorNotFound, "the subject has no confirmed TOTP factor")
	case isRecovery && st.RecoveryCodes == 0:
		return "", lapse.Errorf(lapse.CodeFactorNotFound, "the subject has no unused recovery code left")
	}
	factor := lapse.FactorTOTP
	if isRecovery {
		factor = lapse.FactorRecoveryCode
	}
	id, err := s.begin(ctx, sess, factor, now)
	if err != nil {
		return "", err
	}
	var outcome lapse.AttemptOutcome
	method := lapse.MethodOTP
	if isRecovery {
		method = lapse.MethodRecoveryCode
		outcome, err = s.useRecovery(ctx, sess.Subject, recovery, now)
	} else {
		outcome, err = s.useOTP(ctx, sess.Subject, st.TOTP, otpCode, now)
	}
	if outcome != "" {
		s.finish(ctx, id, outcome)
	}
	if err != nil {
		return "", err
	}
	return method, nil
}

// useRecovery spends recovery code of subject and says how the attempt
// ended: accepted, or rejected (with errRejected). A store failure leaves
// the attempt unfinished.
func (s *Service) useRecovery(ctx context.Context, subject, code string, now time.Time) (lapse.AttemptOutcome, error) {
	used, err := s.store.UseRecoveryCode(ctx, subject, recoveryHash(subject, code), now)
	switch {
	case err != nil:
		return "", err
	case !used:
		return lapse.AttemptRejected, errRejected
	}
	return lapse.AttemptAccepted, nil
}

// useOTP matches code against f and uses its time step, and says how the
// attempt ended: accepted, rejected (errRejected), or reused (errReused:
// this step or a newer one was already used, maybe by another request
// meanwhile). A store failure leaves the attempt unfinished.
func (s *Service) useOTP(ctx context.Context, subject string, f *lapse.TOTPFactor, code string, now time.Time) (lapse.AttemptOutcome, error) {
	step, ok, err := s.match(f, code, now)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return lapse.AttemptRejected, errRejected
	case step <= f.LastStep:
		return lapse.AttemptReused, errReused
	}
	used, err := s.store.UseTOTPStep(ctx, subject, f.ID, step, now)
	switch {
	case err != nil:
		return "", err
	case !used:
		return lapse.AttemptReused, errReused
	}
	return lapse.AttemptAccepted, nil
}

// RemoveTOTP implements [lapse.FactorService]: it deletes the TOTP factor
// of sess's subject and its recovery codes. sess must have been stepped
// up to AAL2 within RecentAuth, otherwise it fails with
// [lapse.CodeStepUpRequired]; it fails with [lapse.CodeFactorNotFound]
// when there is nothing to remove.
func (s *Service) RemoveTOTP(ctx context.Context, sess *lapse.Session) error {
	if err := s.recent(sess, 2, s.m.Clock().Now()); err != nil {
		return err
	}
	return s.store.RemoveTOTP(ctx, sess.Subject)
}

// enrolAllowed checks that sess may start an enrolment: a recent sign-in,
// and a recent AAL2 step-up when the subject already has passkeys (a
// confirmed TOTP factor must be removed first, which needs one too).
func (s *Service) enrolAllowed(ctx context.Context, sess *lapse.Session, now time.Time) error {
	st, err := s.store.Factors(ctx, sess.Subject)
	if err != nil {
		return err
	}
	aal := 0
	if st.Passkeys > 0 {
		aal = 2
	}
	return s.recent(sess, aal, now)
}

// recent checks that sess may change a factor, at aal or above.
func (s *Service) recent(sess *lapse.Session, aal int, now time.Time) error {
	return lapse.RecentFactorChange(sess, aal, s.recentAuth, now)
}

var (
	errRejected = &lapse.Error{Code: lapse.CodeRejected, Message: "the code is wrong or has expired"}
	errReused   = &lapse.Error{Code: lapse.CodeReused, Message: "this code was already used; wait for the next one"}
)

// begin records an attempt, or refuses it past the limit.
func (s *Service) begin(ctx context.Context, sess *lapse.Session, factor string, now time.Time) (int64, error) {
	return lapse.BeginAttempt(ctx, s.store, lapse.Attempt{Subject: sess.Subject, SessionID: sess.ID, Factor: factor, Now: now}, s.limit)
}

// finish records an attempt's outcome. A failure to record it leaves the
// attempt pending, which counts as failed: the safe side, so it is not
// reported.
func (s *Service) finish(ctx context.Context, id int64, outcome lapse.AttemptOutcome) {
	_ = s.store.FinishAttempt(ctx, id, outcome)
}

// match returns the newest time step within the skew window whose code is
// code. Every step of the window is computed and compared in constant
// time, so the time taken does not say which matched.
func (s *Service) match(f *lapse.TOTPFactor, code string, now time.Time) (int64, bool, error) {
	secret, err := s.open(f.Subject, f.Secret)
	if err != nil {
		return 0, false, err
	}
	b32secret := b32.EncodeToString(secret)
	cur := Step(now)
	var found int64
	ok := false
	for st := cur - Skew; st <= cur+Skew; st++ {
		want, err := hotp.GenerateCodeCustom(b32secret, uint64(st), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = st, true
		}
	}
	return found, ok, nil
}

// Step returns the RFC 6238 time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// totpCode returns code without spaces if it is Digits ASCII digits.
func totpCode(code string) (string, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != Digits {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// sealVersion starts every sealed secret, so the format can change.
const sealVersion = 1

// seal encrypts secret for subject: version, nonce, then the AES-GCM
// ciphertext, with the subject as additional data so a sealed secret
// copied to another subject does not open.
func (s *Service) seal(subject string, secret []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], secret, aad(subject))
}

func (s *Service) open(subject string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, &lapse.Error{Code: lapse.CodeInternal, Message: "the stored TOTP secret could not be opened",
			Err: fmt.Errorf("totp: sealed secret of subject %q has an unknown format", subject)}
	}
	secret, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(subject))
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInternal, Message: "the stored TOTP secret could not be opened",
			Err: fmt.Errorf("totp: the factor key does not open the secret of subject %q (was the key changed?): %w", subject, err)}
	}
	return secret, nil
}

func aad(subject string) []byte { return []byte("lapse totp secret\x00" + subject) }

// Recovery codes are 16 Crockford base32 characters (80 random bits),
// shown in groups of four. Input is read leniently: any case, with or
// without dashes and spaces, O for 0 and I or L for 1.
const (
	recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	recoveryLen      = 16
)

// newRecoveryCodes returns RecoveryCodes fresh codes and their hashes.
func newRecoveryCodes(subject string) ([]string, []lapse.TokenHash) {
	codes := make([]string, RecoveryCodes)
	hashes := make([]lapse.TokenHash, RecoveryCodes)
	for i := range codes {
		var raw [recoveryLen]byte
		rand.Read(raw[:])
		var b strings.Builder
		for j, c := range raw {
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[c%32]) // 256 is a multiple of 32: no bias
		}
		codes[i] = b.String()
		norm, _ := recoveryCode(codes[i])
		hashes[i] = recoveryHash(subject, norm)
	}
	return codes, hashes
}

// recoveryCode returns the canonical form of code if it has the shape of
// a recovery code.
func recoveryCode(code string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch r {
		case '-', ' ':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryLen {
		return "", false
	}
	return b.String(), true
}

// recoveryHash is the SHA-256 of a canonical recovery code bound to its
// subject. A plain hash suffices: the code has 80 random bits, beyond
// guessing even offline, so a slow password hash would add nothing.
func recoveryHash(subject, code string) lapse.TokenHash {
	return sha256.Sum256([]byte("lapse recovery code\x00" + subject + "\x00" + code))
}
