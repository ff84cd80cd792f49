// Package password hashes and checks the passwords of console operators
// with argon2id, kept as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// (salt and hash in unpadded standard base64). The parameters are OWASP's
// minimum for argon2id (Password Storage Cheat Sheet: "a minimum
// configuration of 19 MiB of memory, an iteration count of 2, and 1
// degree of parallelism"), with a 16-byte random salt and a 32-byte hash.
// A hash made with other parameters (stronger ones, in a later version)
// still verifies, within bounds that keep a tampered record from asking
// for gigabytes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// The parameters new hashes get (OWASP Password Storage Cheat Sheet,
// argon2id: m=19 MiB, t=2, p=1).
const (
	Memory  = 19 * 1024 // KiB
	Time    = 2
	Threads = 1
	SaltLen = 16
	KeyLen  = 32
)

// MinLength is the fewest characters a password may have: NIST SP
// 800-63B-4 §3.1.1.2 asks for at least 15 when the password is a single
// factor (8 when it is only part of a multi-factor one). Operators also
// need a one-time code, but the stricter minimum keeps the password
// worth something should the second factor leak.
const MinLength = 15

// MaxLength is the most bytes a password may have: NIST asks verifiers
// to allow at least 64 characters; the bound keeps a request from
// making the server hash megabytes.
const MaxLength = 1024

// ErrPolicy is the error of a password [Acceptable] refuses.
var ErrPolicy = fmt.Errorf("a password must be %d to %d characters of valid UTF-8", MinLength, MaxLength)

// Acceptable reports whether pw may be set as a password: at least
// [MinLength] characters (Unicode code points, as NIST counts them), at
// most [MaxLength] bytes, valid UTF-8. Any other composition rule is
// left out, as NIST SP 800-63B-4 asks.
func Acceptable(pw string) error {
	if !utf8.ValidString(pw) || utf8.RuneCountInString(pw) < MinLength || len(pw) > MaxLength {
		return ErrPolicy
	}
	return nil
}

// Hash returns the PHC string of pw with a fresh random salt and the
// parameters above. It does not check [Acceptable].
func Hash(pw string) string {
	p := params{memory: Memory, time: Time, threads: Threads, salt: make([]byte, SaltLen)}
	rand.Read(p.salt)
	p.key = argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, KeyLen)
	return p.String()
}

// Verify reports whether pw is the password of the PHC string phc,
// comparing in constant time. It fails for a string that is not an
// argon2id PHC string within the bounds this package accepts.
func Verify(phc, pw string) (bool, error) {
	p, err := parse(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

// VerifyDummy does the work of [Verify] against a hash no password
// matches, and reports false: a sign-in under a name that is no one's
// takes as long as one under a real name, so the time does not tell
// which names exist.
func VerifyDummy(pw string) bool {
	dummyOnce.Do(func() { dummy = Hash("lapse dummy password, never a real one") })
	Verify(dummy, pw)
	return false
}

var (
	dummyOnce sync.Once
	dummy     string
)

// params are the fields of a PHC string.
type params struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

// The bounds of the parameters Verify accepts from a stored hash.
const (
	maxMemory  = 128 << 10 // KiB: 128 MiB, over 6 times OWASP's 19 MiB
	maxTime    = 10
	maxThreads = 16
)

var b64 = base64.RawStdEncoding

// String returns p as a PHC string.
func (p params) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

var errFormat = errors.New("password: not an argon2id PHC string this version accepts")

// parse reads an argon2id PHC string with version 19, parameters in the
// order m, t, p within bounds, a salt of 8 to 64 bytes and a hash of 16
// to 64.
func parse(phc string) (params, error) {
	if strings.ContainsAny(phc, "\r\n") { // base64 decoding skips them
		return params{}, errFormat
	}
	f := strings.Split(phc, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return params{}, errFormat
	}
	var p params
	var err error
	if p.memory, p.time, p.threads, err = parseCosts(f[3]); err != nil {
		return params{}, err
	}
	p.salt, err = b64.Strict().DecodeString(f[4])
	if err != nil || len(p.salt) < 8 || len(p.salt) > 64 {
		return params{}, errFormat
	}
	p.key, err = b64.Strict().DecodeString(f[5])
	if err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return params{}, errFormat
	}
	return p, nil
}

// parseCosts reads "m=<KiB>,t=<passes>,p=<threads>", each a decimal
// without sign or leading zero, within bounds; argon2 needs at least 8
// KiB per thread.
func parseCosts(s string) (memory, time uint32, threads uint8, err error) {
	var v [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		var field string
		field, s, _ = strings.Cut(s, ",")
		digits, ok := strings.CutPrefix(field, name)
		if !ok || digits == "" || len(digits) > 10 || (digits[0] == '0' && len(digits) > 1) || strings.Trim(digits, "0123456789") != "" {
			return 0, 0, 0, errFormat
		}
		v[i], _ = strconv.ParseUint(digits, 10, 64)
	}
	if s != "" || v[1] < 1 || v[1] > maxTime || v[2] < 1 || v[2] > maxThreads || v[0] < 8*v[2] || v[0] > maxMemory {
		return 0, 0, 0, errFormat
	}
	return uint32(v[0]), uint32(v[1]), uint8(v[2]), nil
}
