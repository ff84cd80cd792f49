package lapse

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"hash/crc32"
	"log/slog"
)

// Token is a session's bearer secret as handed to the client. It is opaque:
// a fixed prefix that secret scanners can match, 43 base62 characters from
// crypto/rand (256 bits) and a 6-character CRC-32 checksum, so a mistyped
// or truncated token is refused without a store lookup.
//
// String and LogValue redact it, so a Token passed to fmt or slog never
// prints its secret; use [Token.Reveal] where the secret must be sent.
type Token string

// Token shapes.
const (
	// TokenPrefix starts every session token.
	TokenPrefix = "lps_"
	// APIKeyPrefix starts every API key.
	APIKeyPrefix  = "lpk_"
	secretChars   = 43 // 43 * log2(62) = 256.03 bits
	checksumChars = 6  // 62^6 > 2^32
	// TokenLen is the length of a token or API key.
	TokenLen = len(TokenPrefix) + secretChars + checksumChars
	// TokenBits is the entropy of a token's secret part, rounded down.
	TokenBits = 256
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// TokenHash is the SHA-256 of a token: the only form in which a store
// keeps it.
type TokenHash [sha256.Size]byte

// NewToken returns a fresh session token.
func NewToken() Token { return Token(newSecret(TokenPrefix)) }

// NewAPIKey returns a fresh API key, shaped like a token with the
// [APIKeyPrefix].
func NewAPIKey() string { return newSecret(APIKeyPrefix) }

// newSecret draws secretChars uniform base62 characters from crypto/rand
// by rejection sampling and appends the checksum. crypto/rand.Read never
// fails on supported platforms (Go 1.24+), it crashes the program instead.
func newSecret(prefix string) string {
	b := make([]byte, 0, TokenLen)
	b = append(b, prefix...)
	var buf [64]byte
	for len(b) < len(prefix)+secretChars {
		rand.Read(buf[:])
		for _, c := range buf {
			if c < 248 && len(b) < len(prefix)+secretChars { // 248 = 4*62: no modulo bias
				b = append(b, base62[c%62])
			}
		}
	}
	return string(appendChecksum(b, b[len(prefix):]))
}

func appendChecksum(dst, secret []byte) []byte {
	c := checksum(string(secret))
	return append(dst, c[:]...)
}

// checksum encodes the CRC-32 of secret in base62. It reads the string in
// place, eight bytes a step (slicing-by-8, as hash/crc32's portable code
// does): the library's own CRC would make the secret escape to the heap,
// and a verify that allocates costs more; a byte a step was a fifth of a
// verify served from the cache.
func checksum(secret string) [checksumChars]byte {
	t := &crcSlicing8
	crc := ^uint32(0)
	s := secret
	for len(s) >= 8 {
		crc ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		crc = t[0][s[7]] ^ t[1][s[6]] ^ t[2][s[5]] ^ t[3][s[4]] ^
			t[4][crc>>24] ^ t[5][(crc>>16)&0xff] ^ t[6][(crc>>8)&0xff] ^ t[7][crc&0xff]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		crc = t[0][byte(crc)^s[i]] ^ (crc >> 8)
	}
	sum := uint64(^crc)
	var c [checksumChars]byte
	for i := checksumChars - 1; i >= 0; i-- {
		c[i] = base62[sum%62]
		sum /= 62
	}
	return c
}

// crcSlicing8 are the tables of checksum: [0] is the IEEE table, [k] the
// CRC of a byte followed by k zero bytes.
var crcSlicing8 = func() (t [8][256]uint32) {
	t[0] = *crc32.IEEETable
	for i := range 256 {
		crc := t[0][i]
		for k := 1; k < 8; k++ {
			crc = t[0][crc&0xff] ^ (crc >> 8)
			t[k][i] = crc
		}
	}
	return t
}()

// isBase62 marks the bytes of the token alphabet.
var isBase62 = func() (t [256]bool) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = true
	}
	return t
}()

// ParseToken checks that s has the shape of a session token: prefix,
// length, alphabet and checksum. It says nothing of whether the session
// exists. It fails with [CodeSessionNotFound], so a malformed token and
// an unknown one look alike to a caller. It does not allocate.
func ParseToken(s string) (Token, error) {
	if !wellFormed(s, TokenPrefix) {
		return "", errMalformedToken
	}
	return Token(s), nil
}

// ValidAPIKeyShape reports whether s has the shape of an API key.
func ValidAPIKeyShape(s string) bool { return wellFormed(s, APIKeyPrefix) }

var errMalformedToken = &Error{Code: CodeSessionNotFound, Message: "no such session"}

func wellFormed(s, prefix string) bool {
	if len(s) != TokenLen || s[:len(prefix)] != prefix {
		return false
	}
	for i := len(prefix); i < len(s); i++ {
		if !isBase62[s[i]] {
			return false
		}
	}
	want := checksum(s[len(prefix) : len(prefix)+secretChars])
	return string(want[:]) == s[len(prefix)+secretChars:]
}

// Hash returns the SHA-256 of the token.
func (t Token) Hash() TokenHash { return HashSecret(string(t)) }

// HashSecret returns the SHA-256 of a token or API key. Secrets of up to
// 64 bytes are hashed from a stack copy, without allocating.
func HashSecret(s string) TokenHash {
	var buf [64]byte
	if len(s) <= len(buf) {
		n := copy(buf[:], s)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(s))
}

// Equal compares two hashes in constant time.
func (h TokenHash) Equal(o TokenHash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// Reveal returns the secret itself, for sending to the client that owns it.
func (t Token) Reveal() string { return string(t) }

// String redacts the token: it keeps the prefix and the checksum, which
// are enough to tell two tokens apart in a support conversation and say
// nothing of the secret.
func (t Token) String() string {
	if len(t) != TokenLen {
		return "lps_[REDACTED]"
	}
	return string(t[:len(TokenPrefix)]) + "[REDACTED]" + string(t[len(t)-checksumChars:])
}

// LogValue redacts the token in slog output.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }
