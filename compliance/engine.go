package compliance

import (
	"github.com/lapsehq/lapse"
)

// Engine states how a session engine behaves in the ways the standards
// care about and a configuration cannot change. Structural rules
// ([ScopeEngine]) read it. [LapseEngine] returns the facts of lapse's
// own engine; the tests in this package check each of them against a
// running [lapse.Manager].
type Engine struct {
	// TokenBits is the entropy of a session token's random part.
	TokenBits int
	// TokenGenerator names where that randomness comes from.
	TokenGenerator string
	// TokenCSPRNG reports whether the generator is a cryptographically
	// secure, approved random bit generator.
	TokenCSPRNG bool
	// TokenHashedAtRest reports whether the store keeps only a hash of
	// each token, never the token.
	TokenHashedAtRest bool
	// TokenRedacted reports whether tokens are redacted wherever they
	// could reach a log, an event or an error message.
	TokenRedacted bool
	// NewTokenPerAuthentication reports whether every authentication,
	// reauthentication included, gets a session with a new token.
	NewTokenPerAuthentication bool
	// AbsoluteFixed reports whether the absolute deadline is fixed when
	// a session is created and activity never moves it.
	AbsoluteFixed bool
	// ActivityResetsIdle reports whether activity restarts the idle
	// timeout (never past the absolute deadline).
	ActivityResetsIdle bool
	// ReauthResetsBoth reports whether a reauthentication starts both
	// the idle and the absolute timeout afresh.
	ReauthResetsBoth bool
	// ServerSideExpiry reports whether expiry is decided by the server
	// at every verification, so that a session past either deadline is
	// never accepted again, whatever the client holds.
	ServerSideExpiry bool
	// LogoutInvalidates reports whether logout ends the session on the
	// server, so that its token is never accepted again.
	LogoutInvalidates bool
}

// lapseTokenBits is the entropy of a lapse token: between its prefix and
// its 6-character checksum come 8 characters for the time it was issued,
// which are not secret, and 35 uniform base62 ones from crypto/rand (see
// [lapse.Token]), which carry 208 bits.
var lapseTokenBits = lapse.TokenBits

// LapseEngine returns the facts of lapse's engine:
//
//   - tokens carry 208 bits from crypto/rand (lapse.NewToken) and stores
//     keep only their hash: the issue time and 208 bits of their SHA-256
//     (lapse.HashToken); Token's String and LogValue redact them;
//   - every authentication is a new session (lapse.Manager.Create) with
//     a new token, created and last-authenticated now, so a
//     reauthentication starts both timeouts afresh; the engine has no
//     way to extend a session in place;
//   - the absolute deadline is set at creation and never moved; a verify
//     slides the idle deadline, never past the absolute one;
//   - every verify compares both deadlines with the injected clock on the
//     server, and a lapsed or revoked session is refused for good.
func LapseEngine() Engine {
	return Engine{
		TokenBits:                 lapseTokenBits,
		TokenGenerator:            "crypto/rand",
		TokenCSPRNG:               true,
		TokenHashedAtRest:         true,
		TokenRedacted:             true,
		NewTokenPerAuthentication: true,
		AbsoluteFixed:             true,
		ActivityResetsIdle:        true,
		ReauthResetsBoth:          true,
		ServerSideExpiry:          true,
		LogoutInvalidates:         true,
	}
}
