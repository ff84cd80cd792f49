package probe

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sample(n int, token func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = token(i)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func jwt(header, claims string) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, []byte("secret"))
	m.Write([]byte(signed))
	return signed + "." + enc.EncodeToString(m.Sum(nil))
}

func TestAnalyzeTokens(t *testing.T) {
	cases := []struct {
		name    string
		tokens  []string
		maxLife time.Duration
		problem string // a substring of the problems; "" for none
	}{
		{"random_256_bits_base64url", sample(20, func(int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }), 0, ""},
		{"random_128_bits_hex", sample(20, func(int) string { return hex.EncodeToString(randomBytes(16)) }), 0, ""},
		{"random_64_bits_hex_is_enough", sample(20, func(int) string { return hex.EncodeToString(randomBytes(8)) }), 0, ""},
		{"random_48_bits_is_short", sample(20, func(int) string { return hex.EncodeToString(randomBytes(6)) }), 0, "below the 64 bits required"},
		{"counter_is_sequential", sample(20, func(i int) string { return fmt.Sprintf("sess-%08d", 4711+i) }), 0, "sequential"},
		{"repeated", sample(20, func(i int) string { return []string{"9f86d081884c7d65", "60303ae22b998861"}[i%2] }), 0, "repeated tokens"},
		{"unix_seconds_after_random_part", sample(20, func(i int) string {
			return hex.EncodeToString(randomBytes(16)) + fmt.Sprint(now.Unix()+int64(i))
		}), 0, "decimal Unix seconds"},
		{"clock_in_bytes", sample(20, func(i int) string {
			b := randomBytes(24)
			ns := uint64(now.UnixNano()) + uint64(i)*1e6
			for k := range 8 {
				b[8+k] = byte(ns >> (56 - 8*k))
			}
			return base64.RawURLEncoding.EncodeToString(b)
		}), 0, "big-endian Unix nanoseconds"},
		{"ascii_bytes_are_biased", sample(20, func(int) string {
			b := randomBytes(32)
			for i := range b {
				b[i] &= 0x7f
			}
			return hex.EncodeToString(b)
		}), 0, "monobit"},
		{"jwt_signed_with_expiry", sample(20, func(i int) string {
			return jwt(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"alice","jti":"%d","iat":%d,"exp":%d}`, i, now.Unix(), now.Unix()+3600))
		}), 2 * time.Hour, ""},
		{"jwt_outliving_the_absolute_timeout", sample(20, func(i int) string {
			return jwt(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"alice","jti":"%d","iat":%d,"exp":%d}`, i, now.Unix(), now.Unix()+86400))
		}), 2 * time.Hour, "claimed lifetime 24h0m0s is beyond the absolute timeout"},
		{"jwt_without_expiry", sample(20, func(i int) string { return jwt(`{"alg":"HS256"}`, fmt.Sprintf(`{"sub":"alice","n":%d}`, i)) }), 0, "no exp claim"},
		{"jwt_unsigned", sample(20, func(i int) string {
			return jwt(`{"alg":"none"}`, fmt.Sprintf(`{"sub":"alice","n":%d,"exp":1}`, i))
		}), 0, "unsigned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := analyzeTokens(tc.tokens, 10, now, tc.maxLife)
			got := strings.Join(a.problems, "; ")
			if tc.problem == "" && got != "" || !strings.Contains(got, tc.problem) {
				t.Errorf("got problems %q, want %q\nnotes: %s", got, tc.problem, strings.Join(a.notes, "; "))
			}
		})
	}
}

func TestBitTests(t *testing.T) {
	if got := bitTests(randomBytes(512)); len(got) != 0 {
		t.Errorf("random bytes: got %v, want no failures", got)
	}
	got := strings.Join(bitTests(make([]byte, 64)), "; ")
	for _, want := range []string{"monobit", "long run", "poker"} {
		if !strings.Contains(got, want) {
			t.Errorf("zero bytes: got %q, want it to include %s", got, want)
		}
	}
	alternating := []byte(strings.Repeat("\x55", 64))
	if got := strings.Join(bitTests(alternating), "; "); !strings.Contains(got, "runs") {
		t.Errorf("alternating bits: got %q, want a runs failure", got)
	}
}

func TestPlantLikeKeepsTheShape(t *testing.T) {
	for _, v := range []string{"0123abcdef0123abcdef", "s%3AAbC-_x.sig", "12345678901234"} {
		p := plantLike(v)
		if len(p) != len(v) || p == v || alphabetOf([]string{p, v}).name != alphabetOf([]string{v}).name {
			t.Errorf("plantLike(%q) = %q, want a different value of the same length and alphabet", v, p)
		}
	}
}

func TestRedactNeverShowsTheWholeSecret(t *testing.T) {
	for _, v := range []string{"", "Z", "QXZW", "0123456789ABCDEF0123456789ABCDEF"} {
		got := redact(v)
		if v != "" && strings.Contains(got, v) {
			t.Errorf("redact(%q) = %q, shows the secret", v, got)
		}
		if !strings.Contains(got, fmt.Sprintf("%d chars", len(v))) {
			t.Errorf("redact(%q) = %q, want the length", v, got)
		}
	}
}
