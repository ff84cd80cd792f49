// Package passkey is lapse's passkey (WebAuthn) factor, beside the TOTP
// factor of package totp: [Service] implements [lapse.PasskeyService]
// on github.com/go-webauthn/webauthn, for a session's holder to register
// passkeys, list, rename and remove them, and step up with one.
//
// What it holds to:
//
//   - The relying party id and the origins come from the configuration;
//     a response from any other origin, or made for another relying
//     party, is refused.
//   - Every challenge is random (the library's 32 bytes), bound to the
//     session and the ceremony it was issued for, kept in the store and
//     taken from it once, atomically, so no node accepts a response
//     twice; it lives [Config.Timeout] on the manager's clock.
//   - User verification is required in both ceremonies (a PIN or a
//     biometric on the authenticator): with the session's own sign-in
//     that makes a step-up to AAL2.
//   - Attestation is not asked for ("none"): lapse does not tell
//     authenticator models apart, so a passkey counts for AAL2 whether
//     it is device-bound or synced (NIST SP 800-63B-4 allows synced
//     passkeys at AAL2), never for AAL3. The amr says which it is by the
//     authenticator's backup-eligible flag: hwk (device-bound) or swk
//     (synced), with user (the presence test).
//   - Signature counters are checked: a counter that does not move past
//     the last one seen (unless the authenticator keeps none) is refused
//     as a sign of a cloned key.
//   - Registering needs a recent sign-in, and a recent AAL2 step-up once
//     the subject has any factor; removing needs a recent AAL2 step-up.
//     Step-up attempts are counted and limited with the TOTP factor's.
package passkey

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/lapsehq/lapse"
)

// Defaults and limits.
const (
	// DefaultTimeout is how long a ceremony's challenge lives: the low
	// end of what WebAuthn recommends when user verification is
	// required (5 to 10 minutes), time for a PIN or a phone.
	DefaultTimeout = 5 * time.Minute
	// MaxPasskeys caps a subject's passkeys.
	MaxPasskeys = 20
	// MaxNameLen caps a passkey's name, in bytes.
	MaxNameLen = 64
	// DefaultName names a passkey registered without a name.
	DefaultName = "Passkey"
	// userHandleSize is the size of a subject's random user handle.
	userHandleSize = 32
)

// Config configures a [Service]. Manager, RPID and Origins are required;
// every other zero value is a documented default.
type Config struct {
	// Manager tells the time and finds sessions.
	Manager *lapse.Manager
	// Store keeps the passkeys and challenges; nil means Manager's
	// store, which must then implement [lapse.FactorStore].
	Store lapse.FactorStore
	// RPID is the relying party id: the domain the passkeys belong to,
	// such as "example.com" (valid for its subdomains too), never an IP
	// address. See [CheckRPID].
	RPID string
	// RPName is the name authenticators show; "" means RPID.
	RPName string
	// Origins are the origins allowed to run the ceremonies, such as
	// "https://app.example.com": on RPID or a subdomain of it, https
	// except on localhost. See [CheckOrigin].
	Origins []string
	// Timeout is how long a challenge lives; 0 means DefaultTimeout.
	Timeout time.Duration
	// RecentAuth is how recent a session's sign-in (or AAL2 step-up) must
	// be to register or remove a passkey; 0 means 15 minutes.
	RecentAuth time.Duration
	// Limit caps the step-up attempts that do not succeed, counted with
	// the TOTP factor's; zero fields mean 5 minutes, 5 per session and
	// 10 per subject, as in package totp.
	Limit lapse.AttemptLimit
}

// Service is the passkey factor. It is safe for concurrent use.
type Service struct {
	m          *lapse.Manager
	store      lapse.FactorStore
	wa         *webauthn.WebAuthn
	timeout    time.Duration
	recentAuth time.Duration
	limit      lapse.AttemptLimit
}

var _ lapse.PasskeyService = (*Service)(nil)

// New returns a service for cfg. It fails with [lapse.CodeInvalid] if a
// required field is missing or invalid, or if no store keeps factors.
func New(cfg Config) (*Service, error) {
	if cfg.Manager == nil {
		return nil, lapse.Errorf(lapse.CodeInvalid, "passkey.New: Config.Manager is required")
	}
	if err := CheckRPID(cfg.RPID); err != nil {
		return nil, lapse.Errorf(lapse.CodeInvalid, "passkey.New: Config.RPID: %v", err)
	}
	if len(cfg.Origins) == 0 {
		return nil, lapse.Errorf(lapse.CodeInvalid, "passkey.New: Config.Origins is required")
	}
	for _, o := range cfg.Origins {
		if err := CheckOrigin(cfg.RPID, o); err != nil {
			return nil, lapse.Errorf(lapse.CodeInvalid, "passkey.New: Config.Origins: %q %v", o, err)
		}
	}
	store, err := lapse.FactorStoreOf(cfg.Manager, cfg.Store, "passkey.New")
	if err != nil {
		return nil, err
	}
	s := &Service{m: cfg.Manager, store: store, timeout: cfg.Timeout, recentAuth: cfg.RecentAuth, limit: cfg.Limit}
	s.defaults()
	name := cfg.RPName
	if name == "" {
		name = cfg.RPID
	}
	wait := webauthn.TimeoutConfig{Timeout: s.timeout, TimeoutUVD: s.timeout} // sent to the browser; lapse enforces its own
	wa, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: name, RPOrigins: cfg.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: wait, Registration: wait},
	})
	if err != nil {
		return nil, lapse.Errorf(lapse.CodeInvalid, "passkey.New: %v", err)
	}
	s.wa = wa
	return s, nil
}

func (s *Service) defaults() {
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.recentAuth == 0 {
		s.recentAuth = 15 * time.Minute
	}
}

// CheckRPID reports why id cannot be a relying party id: it must be a
// domain name in lower case, without scheme, port or path, and not an
// IP address (browsers refuse those).
func CheckRPID(id string) error {
	switch {
	case id == "":
		return errors.New("is required: the domain of the site, such as example.com")
	case net.ParseIP(id) != nil:
		return errors.New("must be a domain name, not an IP address: browsers refuse passkeys for IP addresses (use localhost to develop)")
	case strings.ContainsAny(id, ":/?#@ ") || strings.ToLower(id) != id || strings.Trim(id, ".") != id:
		return errors.New("must be a bare domain name in lower case, such as example.com, without scheme, port or path")
	}
	return protocol.ValidateRPID(id)
}

// CheckOrigin reports why origin cannot run ceremonies for the relying
// party rpID: it must be scheme://host[:port] with nothing after, on
// rpID or a subdomain of it, and https unless the host is localhost (a
// secure context over plain HTTP).
func CheckOrigin(rpID, origin string) error {
	u, err := url.Parse(origin)
	switch {
	case err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be an origin: scheme://host[:port], such as https://app.example.com")
	case u.Scheme != "https" && !(u.Scheme == "http" && isLocalhost(u.Hostname())):
		return errors.New("must be https (http only on localhost, which browsers treat as secure)")
	}
	host := strings.ToLower(u.Hostname())
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("is not on the relying party id %q nor a subdomain of it", rpID)
	}
	return nil
}

func isLocalhost(host string) bool {
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// Passkeys implements [lapse.PasskeyService].
func (s *Service) Passkeys(ctx context.Context, subject string) ([]*lapse.Passkey, error) {
	return s.store.Passkeys(ctx, subject)
}

// user is a subject as the WebAuthn library sees it.
type user struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.handle }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// credential is p as the WebAuthn library checks an assertion against it.
func credential(p *lapse.Passkey) webauthn.Credential {
	c := webauthn.Credential{
		ID: p.CredentialID, PublicKey: p.PublicKey, AttestationFormat: p.AttestationFormat,
		Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: p.BackupEligible, BackupState: p.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// subjectUser returns the subject with its passkeys and its user handle:
// the one its passkeys were made for, or a new random one.
func subjectUser(subject string, keys []*lapse.Passkey) *user {
	u := &user{name: subject}
	for _, p := range keys {
		u.creds = append(u.creds, credential(p))
		if u.handle == nil {
			u.handle = p.UserHandle
		}
	}
	if u.handle == nil {
		u.handle = make([]byte, userHandleSize)
		rand.Read(u.handle)
	}
	return u
}

// changeAllowed checks that sess may register a passkey now: recently
// signed in, and recently stepped up to AAL2 if the subject has a factor.
func (s *Service) changeAllowed(ctx context.Context, sess *lapse.Session, now time.Time) error {
	st, err := s.store.Factors(ctx, sess.Subject)
	if err != nil {
		return err
	}
	aal := 0
	if len(st.Available()) > 0 {
		aal = 2
	}
	return lapse.RecentFactorChange(sess, aal, s.recentAuth, now)
}

// RegistrationOptions implements [lapse.PasskeyService]: the options of
// navigator.credentials.create() for a new passkey of sess's subject,
// user verification required, no attestation, the subject's passkeys
// excluded. It fails with [lapse.CodeStepUpRequired] unless sess signed
// in within RecentAuth (and, when the subject has a factor, stepped up
// to AAL2 within it), and with [lapse.CodeConflict] at MaxPasskeys.
func (s *Service) RegistrationOptions(ctx context.Context, sess *lapse.Session) ([]byte, error) {
	now := s.m.Clock().Now()
	if err := s.changeAllowed(ctx, sess, now); err != nil {
		return nil, err
	}
	keys, err := s.store.Passkeys(ctx, sess.Subject)
	if err != nil {
		return nil, err
	}
	if len(keys) >= MaxPasskeys {
		return nil, lapse.Errorf(lapse.CodeConflict, "at most %d passkeys: remove one first", MaxPasskeys)
	}
	u := subjectUser(sess.Subject, keys)
	exclude := make([]protocol.CredentialDescriptor, len(u.creds))
	for i := range u.creds {
		exclude[i] = u.creds[i].Descriptor()
	}
	creation, sd, err := s.wa.BeginRegistration(u, webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInternal, Message: "could not start the registration", Err: err}
	}
	if err := s.issue(ctx, sess, lapse.CeremonyRegistration, sd, now); err != nil {
		return nil, err
	}
	return json.Marshal(creation)
}

// issue keeps a ceremony's state in the store, under its challenge.
func (s *Service) issue(ctx context.Context, sess *lapse.Session, c lapse.Ceremony, sd *webauthn.SessionData, now time.Time) error {
	data, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	return s.store.PutChallenge(ctx, &lapse.Challenge{
		Hash: lapse.HashSecret(sd.Challenge), Subject: sess.Subject, SessionID: sess.ID, Ceremony: c,
		Data: data, ExpiresAt: now.Add(s.timeout),
	})
}

var errChallenge = &lapse.Error{Code: lapse.CodeChallengeInvalid,
	Message: "this passkey response answers no open challenge of this session (used, expired or never issued); start again"}

// take takes the challenge a response answers from the store: once, and
// only for the session and ceremony it was issued to.
func (s *Service) take(ctx context.Context, sess *lapse.Session, c lapse.Ceremony, challenge string, now time.Time) (*webauthn.SessionData, error) {
	if challenge == "" {
		return nil, errChallenge
	}
	ch, err := s.store.TakeChallenge(ctx, sess.Subject, lapse.HashSecret(challenge), now)
	if err != nil {
		return nil, err
	}
	if ch == nil || ch.SessionID != sess.ID || ch.Ceremony != c {
		return nil, errChallenge
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(ch.Data, &sd); err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInternal, Message: "a stored challenge could not be read", Err: err}
	}
	// lapse decides expiry on its own clock, and always asks for user
	// verification, whatever the stored state says.
	sd.Expires = time.Time{}
	sd.UserVerification = protocol.VerificationRequired
	return &sd, nil
}

// rejected is a response that failed verification; the library's reason
// is kept as the cause, for the logs.
func rejected(err error) error {
	return &lapse.Error{Code: lapse.CodePasskeyRejected, Message: "the passkey could not be verified", Err: detail(err)}
}

// detail adds a WebAuthn error's debugging information, which its
// message leaves out.
func detail(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w (%s)", err, pe.DevInfo)
	}
	return err
}

func invalid(what string, err error) error {
	return &lapse.Error{Code: lapse.CodeInvalid, Message: "the body's credential is not " + what, Err: detail(err)}
}

// Register implements [lapse.PasskeyService]: it checks a response of
// navigator.credentials.create() against the challenge it answers and
// stores the passkey under name ("" means DefaultName). It fails with
// [lapse.CodeInvalid] for a response that does not parse or a name that
// is not 1 to MaxNameLen printable characters, [lapse.CodeChallengeInvalid],
// [lapse.CodePasskeyRejected] (another origin, no user verification...),
// [lapse.CodeConflict] for a passkey already registered, and like
// RegistrationOptions.
func (s *Service) Register(ctx context.Context, sess *lapse.Session, response []byte, name string) (*lapse.Passkey, error) {
	name, err := passkeyName(name)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, invalid("a WebAuthn registration response", err)
	}
	now := s.m.Clock().Now()
	sd, err := s.take(ctx, sess, lapse.CeremonyRegistration, parsed.Response.CollectedClientData.Challenge, now)
	if err != nil {
		return nil, err
	}
	if err := s.changeAllowed(ctx, sess, now); err != nil {
		return nil, err
	}
	cred, err := s.wa.CreateCredential(&user{handle: sd.UserID, name: sess.Subject}, *sd, parsed)
	if err != nil {
		return nil, rejected(err)
	}
	p := &lapse.Passkey{
		ID: lapse.NewID("pk_"), Subject: sess.Subject, Name: name, CredentialID: cred.ID, UserHandle: sd.UserID,
		PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount, BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, AAGUID: cred.Authenticator.AAGUID, AttestationFormat: cred.AttestationFormat,
		CreatedAt: now,
	}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	if err := s.store.AddPasskey(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// passkeyName returns name, or DefaultName for "", if it can name a
// passkey.
func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return DefaultName, nil
	}
	if len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", lapse.Errorf(lapse.CodeInvalid, "a passkey's name is 1 to %d printable characters", MaxNameLen)
	}
	return name, nil
}

// StepUpOptions implements [lapse.PasskeyService]: the options of
// navigator.credentials.get() for one of the subject's passkeys, user
// verification required. It fails with [lapse.CodeFactorNotFound] when
// the subject has none.
func (s *Service) StepUpOptions(ctx context.Context, sess *lapse.Session) ([]byte, error) {
	keys, err := s.store.Passkeys(ctx, sess.Subject)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, lapse.Errorf(lapse.CodeFactorNotFound, "the subject has no passkey")
	}
	assertion, sd, err := s.wa.BeginLogin(subjectUser(sess.Subject, keys), webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInternal, Message: "could not start the step-up", Err: err}
	}
	if err := s.issue(ctx, sess, lapse.CeremonyAssertion, sd, s.m.Clock().Now()); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// Check implements [lapse.PasskeyService]: it verifies a response of
// navigator.credentials.get() once and returns the methods it proves:
// [lapse.MethodHardwareKey] or [lapse.MethodSoftwareKey], and
// [lapse.MethodUserPresence]. The attempt is counted and recorded. It
// fails with [lapse.CodeInvalid] for a response that does not parse,
// [lapse.CodeChallengeInvalid] for one that answers no open challenge of
// sess (a replay among them), [lapse.CodeTooManyAttempts],
// [lapse.CodePasskeyRejected] for one that fails verification (another
// origin, a bad signature, no user verification, a credential that is
// not the subject's) and [lapse.CodeSignCountRegressed].
func (s *Service) Check(ctx context.Context, sess *lapse.Session, response []byte) ([]string, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, invalid("a WebAuthn assertion response", err)
	}
	now := s.m.Clock().Now()
	sd, err := s.take(ctx, sess, lapse.CeremonyAssertion, parsed.Response.CollectedClientData.Challenge, now)
	if err != nil {
		return nil, err
	}
	id, err := lapse.BeginAttempt(ctx, s.store, lapse.Attempt{Subject: sess.Subject, SessionID: sess.ID, Factor: lapse.FactorPasskey, Now: now}, s.limit)
	if err != nil {
		return nil, err
	}
	methods, err := s.verify(ctx, sess, sd, parsed, now)
	outcome := lapse.AttemptAccepted
	switch lapse.ErrorCode(err) {
	case "":
	case lapse.CodePasskeyRejected, lapse.CodeSignCountRegressed:
		outcome = lapse.AttemptRejected
	default:
		return nil, err // left pending, which counts as failed
	}
	// A failure to record the outcome leaves the attempt pending, which
	// counts as failed: the safe side, so it is not reported.
	_ = s.store.FinishAttempt(ctx, id, outcome)
	return methods, err
}

var errCloned = &lapse.Error{Code: lapse.CodeSignCountRegressed,
	Message: "this passkey's signature counter went back: it may have been copied; use another factor and remove it"}

// verify checks an assertion against the subject's passkeys and records
// the use of the one it was made with.
func (s *Service) verify(ctx context.Context, sess *lapse.Session, sd *webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData, now time.Time) ([]string, error) {
	keys, err := s.store.Passkeys(ctx, sess.Subject)
	if err != nil {
		return nil, err
	}
	var used *lapse.Passkey
	for _, p := range keys {
		if string(p.CredentialID) == string(parsed.RawID) {
			used = p
		}
	}
	if used == nil {
		return nil, rejected(errors.New("the credential is not one of the subject's passkeys"))
	}
	u := subjectUser(sess.Subject, keys)
	// A subject's passkeys share a handle, unless two were registered
	// at once: check against the handle of the one used.
	u.handle, sd.UserID = used.UserHandle, used.UserHandle
	cred, err := s.wa.ValidateLogin(u, *sd, parsed)
	if err != nil {
		return nil, rejected(err)
	}
	if cred.Authenticator.CloneWarning {
		return nil, errCloned
	}
	ok, err := s.store.UsePasskey(ctx, sess.Subject, used.ID, cred.Authenticator.SignCount, cred.Flags.BackupState, now)
	if err != nil {
		return nil, err
	}
	if !ok { // another assertion with this counter, or a newer one, was recorded meanwhile
		return nil, errCloned
	}
	key := lapse.MethodHardwareKey
	if used.BackupEligible {
		key = lapse.MethodSoftwareKey
	}
	return []string{key, lapse.MethodUserPresence}, nil
}

// Rename implements [lapse.PasskeyService]. It fails with
// [lapse.CodeInvalid] for a name that is not 1 to MaxNameLen printable
// characters and [lapse.CodeFactorNotFound] for a passkey that is not
// the subject's.
func (s *Service) Rename(ctx context.Context, sess *lapse.Session, id, name string) error {
	if strings.TrimSpace(name) == "" {
		return lapse.Errorf(lapse.CodeInvalid, "a passkey's name is 1 to %d printable characters", MaxNameLen)
	}
	name, err := passkeyName(name)
	if err != nil {
		return err
	}
	return s.store.RenamePasskey(ctx, sess.Subject, id, name)
}

// Remove implements [lapse.PasskeyService]: sess must have stepped up to
// AAL2 within RecentAuth, otherwise it fails with
// [lapse.CodeStepUpRequired]; it fails with [lapse.CodeFactorNotFound]
// for a passkey that is not the subject's.
func (s *Service) Remove(ctx context.Context, sess *lapse.Session, id string) error {
	if err := lapse.RecentFactorChange(sess, 2, s.recentAuth, s.m.Clock().Now()); err != nil {
		return err
	}
	return s.store.RemovePasskey(ctx, sess.Subject, id)
}
