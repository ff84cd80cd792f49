package lapse

import (
	"crypto/sha256"
	"crypto/subtle"
	"hash/crc32"
	"log/slog"
	"time"
)

// Token is a session's bearer secret as handed to the client. It is opaque:
// a fixed prefix that secret scanners can match, 8 base62 characters for
// the time it was issued, 35 base62 characters from crypto/rand (208
// bits) and a 6-character checksum, so a mistyped or truncated token is
// refused without a store lookup. The time is there so that [Token.Hash]
// can start with it: a store's index on token hashes grows at its end,
// one page for a batch of creates, where a random hash dirtied a page of
// its own for each.
//
// The time is masked, not hidden: its 8 characters are the Unix
// milliseconds plus the value of the 8 random characters after them,
// modulo 62^8. Anyone can take the time back out, as lapse does (and the
// session's created_at tells it anyway); the mask only keeps tokens from
// growing one after another, which session-token scanners (lapse probe's
// token-entropy check among them) take for a counter or a clock.
//
// Tokens issued before the time was added (43 random characters, a plain
// CRC-32 checksum) remain valid; their checksum tells them apart.
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
	secretChars   = 43                                    // the characters between prefix and checksum
	timeChars     = 8                                     // of a session token's secret: 62^8 ms last past the year 8000
	timeSpan      = 62 * 62 * 62 * 62 * 62 * 62 * 62 * 62 // the values of timeChars characters
	checksumChars = 6                                     // 62^6 > 2^32
	// TokenLen is the length of a token or API key.
	TokenLen = len(TokenPrefix) + secretChars + checksumChars
	// TokenBits is the entropy of a session token's random part, rounded
	// down: 35 base62 characters. (An API key's 43 carry 256 bits.)
	TokenBits = 208
)

// timedCRC tells a session token with a time prefix from one without:
// its checksum is the CRC-32 of its secret XOR timedCRC, so that one CRC
// pass over a token says which of the two it is, or neither.
const timedCRC = 0x5fa1_3e2d

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// TokenHash is the form in which a store keeps a token or API key:
// [HashToken] of a session token, [HashSecret] of any other secret.
type TokenHash [sha256.Size]byte

// NewToken returns a fresh session token, issued now.
func NewToken() Token { return newToken(time.Now()) }

// newToken returns a session token issued at at (1970 if before).
func newToken(at time.Time) Token {
	b := make([]byte, len(TokenPrefix)+timeChars, TokenLen)
	copy(b, TokenPrefix)
	b = appendRandom(b, secretChars-timeChars)
	ms := uint64(max(at.UnixMilli(), 0)) % timeSpan
	mask := base62Value(string(b[len(TokenPrefix)+timeChars:][:timeChars]))
	v := (ms + mask) % timeSpan
	for i := len(TokenPrefix) + timeChars - 1; i >= len(TokenPrefix); i-- {
		b[i] = base62[v%62]
		v /= 62
	}
	sum := crc(string(b[len(TokenPrefix):])) ^ timedCRC
	c := encodeChecksum(sum)
	return Token(append(b, c[:]...))
}

// base62Value returns the number s's base62 digits write, most
// significant first. s is of the token alphabet.
func base62Value(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		v = v*62 + uint64(base62Digit[s[i]])
	}
	return v
}

// issuedAt returns the milliseconds since 1970 at which timed token s
// was issued: its time characters less the mask after them.
func issuedAt(s string) uint64 {
	t := s[len(TokenPrefix):]
	v, mask := base62Value(t[:timeChars]), base62Value(t[timeChars:2*timeChars])
	if v < mask {
		v += timeSpan
	}
	return v - mask
}

// NewAPIKey returns a fresh API key, shaped like a token with the
// [APIKeyPrefix].
func NewAPIKey() string { return newSecret(APIKeyPrefix) }

// newSecret draws secretChars uniform base62 characters from crypto/rand
// by rejection sampling and appends the checksum. crypto/rand.Read never
// fails on supported platforms (Go 1.24+), it crashes the program instead.
func newSecret(prefix string) string {
	b := appendRandom(append(make([]byte, 0, TokenLen), prefix...), secretChars)
	return string(appendChecksum(b, b[len(prefix):]))
}

func appendChecksum(dst, secret []byte) []byte {
	c := checksum(string(secret))
	return append(dst, c[:]...)
}

// checksum encodes the CRC-32 of secret in base62: the checksum of an
// API key, and of a session token issued before the time prefix.
func checksum(secret string) [checksumChars]byte { return encodeChecksum(crc(secret)) }

func encodeChecksum(sum uint32) [checksumChars]byte {
	var c [checksumChars]byte
	n := uint64(sum)
	for i := checksumChars - 1; i >= 0; i-- {
		c[i] = base62[n%62]
		n /= 62
	}
	return c
}

// crc returns the IEEE CRC-32 of secret. It reads the string in place,
// eight bytes a step (slicing-by-8, as hash/crc32's portable code does):
// the library's own CRC would make the secret escape to the heap, and a
// verify that allocates costs more; a byte a step was a fifth of a
// verify served from the cache.
func crc(secret string) uint32 {
	t := &crcSlicing8
	v := ^uint32(0)
	s := secret
	for len(s) >= 8 {
		v ^= uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
		v = t[0][s[7]] ^ t[1][s[6]] ^ t[2][s[5]] ^ t[3][s[4]] ^
			t[4][v>>24] ^ t[5][(v>>16)&0xff] ^ t[6][(v>>8)&0xff] ^ t[7][v&0xff]
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		v = t[0][byte(v)^s[i]] ^ (v >> 8)
	}
	return ^v
}

// crcSlicing8 are the tables of crc: [0] is the IEEE table, [k] the
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

// base62Digit maps the bytes of the token alphabet to their values and
// every other byte to noDigit.
var base62Digit = func() (t [256]byte) {
	for i := range t {
		t[i] = noDigit
	}
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = byte(i)
	}
	return t
}()

const noDigit = 0xff

// ParseToken checks that s has the shape of a session token: prefix,
// length, alphabet and checksum, with or without the time prefix. It says
// nothing of whether the session exists. It fails with
// [CodeSessionNotFound], so a malformed token and an unknown one look
// alike to a caller. It does not allocate.
func ParseToken(s string) (Token, error) {
	if shape(s, TokenPrefix) == malformed {
		return "", errMalformedToken
	}
	return Token(s), nil
}

// ValidAPIKeyShape reports whether s has the shape of an API key.
func ValidAPIKeyShape(s string) bool { return shape(s, APIKeyPrefix) == random }

var errMalformedToken = &Error{Code: CodeSessionNotFound, Message: "no such session"}

// secretShape is what a token's checksum says of its secret.
type secretShape int

const (
	malformed secretShape = iota
	random                // all random, a plain CRC-32: API keys, session tokens of old
	timed                 // a time prefix, the CRC-32 XOR timedCRC: session tokens
)

// shape checks s's prefix, length and alphabet and tells its shape by
// its checksum: one CRC pass, compared with the checksum decoded once.
func shape(s, prefix string) secretShape {
	if len(s) != TokenLen || s[:len(prefix)] != prefix {
		return malformed
	}
	for i := len(prefix); i < len(s); i++ {
		if base62Digit[s[i]] == noDigit {
			return malformed
		}
	}
	switch c := uint64(crc(s[len(prefix) : len(prefix)+secretChars])); base62Value(s[len(prefix)+secretChars:]) {
	case c:
		return random
	case c ^ timedCRC:
		return timed
	}
	return malformed
}

// HashToken returns the hash under which a store keeps session token s,
// or false if s is malformed (see [ParseToken]). A token with a time
// (see [Token]) hashes to that time, as a 48-bit big-endian count of
// milliseconds, followed by the first 26 bytes of its SHA-256: hashes
// sort by issue time, so an index on them grows at its end. A token
// without (issued before the time was added) hashes to its SHA-256, as it
// did, so that its stored session is found. It does not allocate.
func HashToken(s string) (TokenHash, bool) {
	switch shape(s, TokenPrefix) {
	case random:
		return HashSecret(s), true
	case timed:
		return timedHash(s), true
	}
	return TokenHash{}, false
}

// timedHash returns the hash of s as a timed token's, without checking
// that s is one (s has a token's length and prefix): a verify looks up
// its cache by it before checking s, since a cached session's hash equal
// to it proves s the token lapse issued for that session (the first 26
// bytes of their SHA-256 are equal), which is well formed.
func timedHash(s string) TokenHash {
	sum := HashSecret(s)
	var h TokenHash
	ms := issuedAt(s)
	h[0], h[1], h[2], h[3], h[4], h[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	copy(h[6:], sum[:])
	return h
}

// Hash returns the hash under which a store keeps the token: see
// [HashToken]. A Token that is not well formed (made neither by
// [NewToken] nor by [ParseToken]) hashes to its SHA-256.
func (t Token) Hash() TokenHash {
	if h, ok := HashToken(string(t)); ok {
		return h
	}
	return HashSecret(string(t))
}

// HashSecret returns the SHA-256 of an API key, or of any other secret
// but a session token (see [HashToken]). Secrets of up to 64 bytes are
// hashed from a stack copy, without allocating.
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
