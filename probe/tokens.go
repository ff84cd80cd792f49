package probe

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tokenAnalysis is what a sample of session tokens shows. Every problem fails the
// token-entropy check; notes are evidence.
type tokenAnalysis struct {
	problems []string
	notes    []string
	estimate float64 // estimated bits of entropy in the unpredictable part
	jwt      bool    // the tokens are JSON Web Tokens, judged by their claims only
	lifetime string  // for JSON Web Tokens, such as " within the absolute timeout"
}

// analyzeTokens judges tokens from separate sign-ins; the first ordered of them were made
// one after another, in that order. now is when they were made, to recognise clocks.
// maxLife, when not zero, is the longest lifetime a structured token may claim.
func analyzeTokens(tokens []string, ordered int, now time.Time, maxLife time.Duration) tokenAnalysis {
	var a tokenAnalysis
	seen := map[string]int{}
	for _, t := range tokens {
		seen[t]++
	}
	if len(seen) < len(tokens) {
		a.problems = append(a.problems, fmt.Sprintf("repeated tokens: %d sign-ins gave only %d different tokens", len(tokens), len(seen)))
	}
	if claims, ok := jwtClaims(tokens); ok {
		// A signed token is as strong as its key, which no sample shows; what can be
		// judged is whether each sign-in gets its own token and how long it may live.
		a.jwt = true
		a.judgeJWT(claims, now, maxLife)
		return a
	}
	parts := tokens
	lengths := make([]int, len(parts))
	for i, t := range parts {
		lengths[i] = len(t)
	}
	short, long := slices.Min(lengths), slices.Max(lengths)
	alpha := alphabetOf(parts)
	a.notes = append(a.notes, fmt.Sprintf("%d tokens, %s characters, %s alphabet (%.1f bits a character)",
		len(parts), span(short, long), alpha.name, alpha.bits()))

	varying, varyFrom, varyTo, estimate := spread(parts, short, alpha)
	a.estimate = estimate
	capacity := float64(varying) * alpha.bits()
	a.notes = append(a.notes, fmt.Sprintf("%d of %d positions vary: at most %.0f bits; estimated %.0f bits from the spread of characters",
		varying, short, capacity, a.estimate))
	switch {
	case a.estimate < 64:
		a.problems = append(a.problems, fmt.Sprintf("about %.0f bits of entropy, below the 64 bits required", a.estimate))
	case a.estimate < 128:
		a.notes = append(a.notes, "below the 128 bits ASVS 5.0 asks of reference tokens")
	}
	if varyFrom >= 0 && ordered >= 5 && steady(parts[:ordered], varyFrom, varyTo, alpha) {
		a.problems = append(a.problems, fmt.Sprintf("sequential: the varying part grows or shrinks steadily over %d consecutive sign-ins", ordered))
	}
	if clock := clockIn(parts, alpha, now); clock != "" {
		a.problems = append(a.problems, "time-derived: "+clock)
	}
	if alpha.name != "mixed" {
		a.problems = append(a.problems, bitTests(varyingBytes(parts, alpha))...)
	}
	return a
}

// spread measures the first n positions of tokens: how many vary, the
// span from the first to the last that varies (-1, -1 when none does),
// and the entropy their spread of characters suggests, in bits.
func spread(tokens []string, n int, alpha alphabet) (varying, from, to int, bits float64) {
	from, to = -1, -1
	column := make([]byte, len(tokens))
	for pos := range n {
		for i, t := range tokens {
			column[i] = t[pos]
		}
		b := positionBits(column, len(alpha.chars))
		if b > 0 {
			varying++
			if from < 0 {
				from = pos
			}
			to = pos + 1
		}
		bits += b
	}
	return varying, from, to, bits
}

func span(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// steady reports whether the varying parts of consecutive tokens only ever increase or
// only ever decrease, as a counter or a clock does.
func steady(tokens []string, from, to int, alpha alphabet) bool {
	less := func(x, y string) int { return strings.Compare(x, y) }
	if alpha.name == "decimal" {
		less = func(x, y string) int {
			a, _ := new(big.Int).SetString(x, 10)
			b, _ := new(big.Int).SetString(y, 10)
			return a.Cmp(b)
		}
	}
	part := func(t string) string {
		if alpha.name == "decimal" {
			return t[from:]
		}
		return t[from:min(to, len(t))]
	}
	up, down := true, true
	for i := 1; i < len(tokens); i++ {
		c := less(part(tokens[i-1]), part(tokens[i]))
		up = up && c < 0
		down = down && c > 0
	}
	return up || down
}

// varyingBytes decodes tokens written in a byte encoding and concatenates the bytes
// whose value differs between tokens.
func varyingBytes(tokens []string, alpha alphabet) []byte {
	var decoded [][]byte
	for _, t := range tokens {
		b, ok := alpha.decode(t)
		if !ok {
			return nil
		}
		decoded = append(decoded, b)
	}
	short := math.MaxInt
	for _, b := range decoded {
		short = min(short, len(b))
	}
	var out []byte
	for pos := range short {
		same := true
		for _, b := range decoded[1:] {
			same = same && b[pos] == decoded[0][pos]
		}
		if !same {
			for _, b := range decoded {
				out = append(out, b[pos])
			}
		}
	}
	return out
}

var digitRun = regexp.MustCompile(`[0-9]{10,}`)

// clockIn describes a reading of the current time found at the same place in at least
// half of the tokens, or returns "".
func clockIn(tokens []string, alpha alphabet, now time.Time) string {
	c := clockReader{now: now}
	hits := map[string]int{}
	for _, t := range tokens {
		found := map[string]bool{}
		c.decimal(t, found)
		if b, ok := alpha.decode(t); ok {
			c.binary(b, found)
		}
		for k := range found {
			hits[k]++
		}
	}
	best, count := "", 0
	for _, k := range sortedKeys(hits) {
		if hits[k] > count {
			best, count = k, hits[k]
		}
	}
	if count < 3 || count*2 < len(tokens) {
		return ""
	}
	return fmt.Sprintf("%s within a day of now, in %d of %d tokens", best, count, len(tokens))
}

// clockReader looks for readings of the time now in a token.
type clockReader struct{ now time.Time }

// clockUnits are the units a Unix time may be written in.
var clockUnits = []struct {
	name string
	per  float64 // units per second
}{{"seconds", 1}, {"milliseconds", 1e3}, {"microseconds", 1e6}, {"nanoseconds", 1e9}}

// near names the unit in which v is within a day of now, or "".
func (c clockReader) near(v float64) string {
	for _, u := range clockUnits {
		if math.Abs(v-float64(c.now.UnixNano())/1e9*u.per) <= 86400*u.per {
			return u.name
		}
	}
	return ""
}

// decimal notes the runs of digits in t that read as the time now.
func (c clockReader) decimal(t string, found map[string]bool) {
	for _, m := range digitRun.FindAllStringIndex(t, -1) {
		for _, w := range []int{10, 13, 16, 19} {
			for from := m[0]; from+w <= m[1]; from++ {
				v, err := strconv.ParseFloat(t[from:from+w], 64)
				if u := c.near(v); err == nil && u != "" {
					found[fmt.Sprintf("characters %d–%d read as decimal Unix %s", from, from+w, u)] = true
				}
			}
		}
	}
}

// binary notes the 4- and 8-byte integers in b that read as the time now.
func (c clockReader) binary(b []byte, found map[string]bool) {
	for off := range b {
		if off+4 <= len(b) {
			if u := c.near(float64(binary.BigEndian.Uint32(b[off:]))); u == "seconds" {
				found[fmt.Sprintf("bytes %d–%d read as big-endian Unix %s", off, off+4, u)] = true
			}
		}
		if off+8 > len(b) {
			continue
		}
		if u := c.near(float64(binary.BigEndian.Uint64(b[off:]))); u != "" {
			found[fmt.Sprintf("bytes %d–%d read as big-endian Unix %s", off, off+8, u)] = true
		}
		if u := c.near(float64(binary.LittleEndian.Uint64(b[off:]))); u != "" {
			found[fmt.Sprintf("bytes %d–%d read as little-endian Unix %s", off, off+8, u)] = true
		}
	}
}

// jwtClaims decodes the header and claims of tokens that all look like JSON Web Tokens.
func jwtClaims(tokens []string) ([]map[string]any, bool) {
	var out []map[string]any
	for _, t := range tokens {
		parts := strings.Split(t, ".")
		if len(parts) != 3 {
			return nil, false
		}
		var header, claims map[string]any
		if !decodeSegment(parts[0], &header) || !decodeSegment(parts[1], &claims) || header["alg"] == nil {
			return nil, false
		}
		claims[" alg"] = header["alg"]
		out = append(out, claims)
	}
	return out, true
}

// jwtExpiry returns the time the exp claim of a JSON Web Token names.
func jwtExpiry(token string) (time.Time, bool) {
	claims, ok := jwtClaims([]string{token})
	if !ok {
		return time.Time{}, false
	}
	exp, ok := claims[0]["exp"].(float64)
	return time.UnixMilli(int64(exp * 1000)), ok
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	return err == nil && json.Unmarshal(b, v) == nil
}

// judgeJWT judges the claims of JSON Web Tokens: a signature, an expiry, a lifetime
// within maxLife (when not zero).
func (a *tokenAnalysis) judgeJWT(claims []map[string]any, now time.Time, maxLife time.Duration) {
	alg, _ := claims[0][" alg"].(string)
	var names []string
	for k := range claims[0] {
		if k != " alg" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	a.notes = append(a.notes, fmt.Sprintf("JSON Web Tokens, alg %s, claims: %s", alg, strings.Join(names, ", ")))
	if strings.EqualFold(alg, "none") {
		a.problems = append(a.problems, "unsigned JSON Web Tokens (alg none): anyone can forge one")
	}
	if _, ok := claims[0]["jti"]; !ok {
		a.notes = append(a.notes, "no jti claim: the tokens carry no id of their own, so a server can only revoke them by user or key")
	}
	exp, ok := claims[0]["exp"].(float64)
	if !ok {
		a.problems = append(a.problems, "no exp claim: the tokens never expire by themselves")
		return
	}
	start := float64(now.UnixNano()) / 1e9
	if iat, ok := claims[0]["iat"].(float64); ok {
		start = iat
	}
	life := time.Duration((exp - start) * float64(time.Second)).Round(time.Millisecond)
	a.notes = append(a.notes, fmt.Sprintf("claimed lifetime %s", life))
	a.lifetime = fmt.Sprintf(" (claimed lifetime %s)", life)
	switch {
	case maxLife > 0 && life > maxLife:
		a.problems = append(a.problems, fmt.Sprintf("claimed lifetime %s is beyond the absolute timeout", life))
	case maxLife > 0:
		a.lifetime = fmt.Sprintf(" within the absolute timeout (claimed lifetime %s)", life)
	}
}
