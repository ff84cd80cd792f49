package lapse

import (
	"context"
	"time"
)

// Passkeys (WebAuthn credentials) as a step-up factor: a [PasskeyService]
// (package passkey) runs the registration and assertion ceremonies and
// keeps the credentials and the challenges in a [PasskeyStore], part of
// every [FactorStore].

// Authentication methods (RFC 8176 "amr" values) a passkey step-up adds
// to a session: the proof of possession of a key kept in hardware or in
// software, and the user-presence test every assertion carries.
const (
	// MethodHardwareKey is a device-bound passkey: its authenticator
	// says the key cannot be backed up or synced (the BE flag is clear).
	MethodHardwareKey = "hwk"
	// MethodSoftwareKey is a synced passkey: its authenticator says the
	// key may be copied to other devices (the BE flag is set), so it is
	// not bound to one piece of hardware.
	MethodSoftwareKey = "swk"
	// MethodUserPresence is the authenticator's test that a person was
	// there (the UP flag).
	MethodUserPresence = "user"
)

// Error codes of the passkey ceremonies.
const (
	// CodeChallengeInvalid: the response answers no challenge lapse
	// issued to this session for this ceremony, or one already answered
	// or expired. Start the ceremony again.
	CodeChallengeInvalid Code = "challenge_invalid"
	// CodePasskeyRejected: the response failed verification: another
	// origin or relying party, a bad signature, no user verification, or
	// a credential that is not one of the subject's passkeys.
	CodePasskeyRejected Code = "passkey_rejected"
	// CodeSignCountRegressed: the authenticator's signature counter did
	// not move past the last one seen, a sign that the key was cloned.
	CodeSignCountRegressed Code = "sign_count_regressed"
)

// Passkey is a subject's WebAuthn credential as a [PasskeyStore] keeps
// it. Nothing in it is secret: the private key never leaves the
// authenticator.
type Passkey struct {
	// ID is lapse's own id of the passkey ("pk_..."), for the routes
	// that rename and remove it.
	ID      string
	Subject string
	// Name is the subject's label for it, such as "Work laptop".
	Name string
	// CredentialID is the authenticator's id of the credential.
	CredentialID []byte
	// UserHandle is the opaque user id the credential was made for:
	// random, the same for all of a subject's passkeys.
	UserHandle []byte
	// PublicKey is the credential's public key, COSE-encoded.
	PublicKey []byte
	// SignCount is the newest signature counter seen; 0 for an
	// authenticator that keeps none.
	SignCount uint32
	// BackupEligible says the key may be synced to other devices (a
	// synced passkey); BackupState that it is backed up now.
	BackupEligible, BackupState bool
	// Transports are the ways the browser may reach the authenticator
	// ("internal", "usb", "hybrid"...), as it reported them.
	Transports []string
	// AAGUID names the authenticator's model (16 bytes, all zero when it
	// does not say).
	AAGUID []byte
	// AttestationFormat is the attestation statement's format at
	// registration ("none" unless the authenticator insisted).
	AttestationFormat string
	CreatedAt         time.Time
	LastUsedAt        time.Time
}

// Ceremony is what a challenge was issued for.
type Ceremony string

// The two WebAuthn ceremonies.
const (
	CeremonyRegistration Ceremony = "registration"
	CeremonyAssertion    Ceremony = "assertion"
)

// Challenge is a WebAuthn challenge awaiting its response, bound to the
// session it was issued to. A [PasskeyStore] hands it out once.
type Challenge struct {
	// Hash is the SHA-256 of the challenge as the client data carries it
	// (base64url): the key the response finds it by.
	Hash      TokenHash
	Subject   string
	SessionID string
	Ceremony  Ceremony
	// Data is the ceremony's state, opaque to the store.
	Data      []byte
	ExpiresAt time.Time
}

// PasskeyStore keeps passkeys and the challenges of their ceremonies. It
// is part of [FactorStore]. Passkeys belong to a subject across all
// tenants; every method is one atomic step and is scoped to the subject
// it names, so no lookup ever finds a passkey by its credential id alone.
type PasskeyStore interface {
	// Passkeys returns subject's passkeys, oldest first; none is an
	// empty list, not an error.
	Passkeys(ctx context.Context, subject string) ([]*Passkey, error)

	// AddPasskey stores p. It fails with [CodeConflict] if p's subject
	// already has a passkey with p's credential id.
	AddPasskey(ctx context.Context, p *Passkey) error

	// UsePasskey records an assertion of the subject's passkey id at now
	// with the authenticator's signature counter count and backup state:
	// if count is above the stored counter, or both are 0 (an
	// authenticator without a counter), it stores them with now as the
	// last use and returns true; otherwise it changes nothing and returns
	// false, a counter that went back. It fails with [CodeFactorNotFound]
	// if the subject has no such passkey.
	UsePasskey(ctx context.Context, subject, id string, count uint32, backupState bool, now time.Time) (bool, error)

	// RenamePasskey sets the name of the subject's passkey id. It fails
	// with [CodeFactorNotFound] if the subject has no such passkey.
	RenamePasskey(ctx context.Context, subject, id, name string) error

	// RemovePasskey deletes the subject's passkey id. It fails with
	// [CodeFactorNotFound] if the subject has no such passkey.
	RemovePasskey(ctx context.Context, subject, id string) error

	// PutChallenge stores c until c.ExpiresAt. A store may drop the
	// challenges that expired an hour or more before c expires.
	PutChallenge(ctx context.Context, c *Challenge) error

	// TakeChallenge deletes subject's challenge whose hash is h and
	// returns it, if it is still live at now (now < ExpiresAt). It
	// returns nil, and no error, if there is none: never issued, another
	// subject's, expired (then it is deleted too), or already taken.
	// However many callers (on
	// however many nodes) take one challenge at once, one gets it.
	TakeChallenge(ctx context.Context, subject string, h TokenHash, now time.Time) (*Challenge, error)
}

// PasskeyService runs the passkey ceremonies for a session's holder. The
// HTTP API's session routes call it; package passkey implements it on
// github.com/go-webauthn/webauthn.
//
// Options are the JSON the browser's navigator.credentials.create() or
// get() takes ({"publicKey": {...}}, binary members in base64url), and
// a response is the JSON of the PublicKeyCredential it returned. Methods
// that take a session expect one the caller has just found valid and act
// for its subject.
type PasskeyService interface {
	// Passkeys returns subject's passkeys, oldest first.
	Passkeys(ctx context.Context, subject string) ([]*Passkey, error)
	// RegistrationOptions starts the registration of a passkey for s's
	// subject. It fails with [CodeStepUpRequired] unless s authenticated
	// recently (and, when the subject already has a factor, at AAL2).
	RegistrationOptions(ctx context.Context, s *Session) ([]byte, error)
	// Register checks a registration response and stores the passkey
	// under name ("" for a default). It fails with [CodeInvalid],
	// [CodeChallengeInvalid], [CodePasskeyRejected], [CodeConflict] and
	// like RegistrationOptions.
	Register(ctx context.Context, s *Session, response []byte, name string) (*Passkey, error)
	// StepUpOptions starts an assertion with one of the subject's
	// passkeys. It fails with [CodeFactorNotFound] if there is none.
	StepUpOptions(ctx context.Context, s *Session) ([]byte, error)
	// Check verifies an assertion response once, and returns the
	// authentication methods it proves, for [FactorAssurance]. It fails
	// with [CodeInvalid], [CodeChallengeInvalid], [CodePasskeyRejected],
	// [CodeSignCountRegressed] and [CodeTooManyAttempts].
	Check(ctx context.Context, s *Session, response []byte) (methods []string, err error)
	// Rename names one of the subject's passkeys.
	Rename(ctx context.Context, s *Session, id, name string) error
	// Remove deletes one of the subject's passkeys. It fails with
	// [CodeStepUpRequired] unless s was stepped up to AAL2 recently.
	Remove(ctx context.Context, s *Session, id string) error
}
