package probe

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
)

// alphabet is the set of characters a token is written in.
type alphabet struct {
	name  string
	chars string
}

// bits is how much one character of the alphabet can carry.
func (a alphabet) bits() float64 { return math.Log2(float64(max(2, len(a.chars)))) }

// The alphabets tokens are commonly written in, narrowest first.
var alphabets = []alphabet{
	{"decimal", "0123456789"},
	{"hex", "0123456789abcdef"},
	{"HEX", "0123456789ABCDEF"},
	{"alphanumeric", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
	{"base64url", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"},
	{"base64", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"},
}

// alphabetOf returns the narrowest common alphabet holding every token, ignoring base64
// padding; tokens in none get an alphabet of the characters they use.
func alphabetOf(tokens []string) alphabet {
	var used []rune
	for _, t := range tokens {
		for _, r := range strings.TrimRight(t, "=") {
			if !slices.Contains(used, r) {
				used = append(used, r)
			}
		}
	}
	for _, a := range alphabets {
		if !slices.ContainsFunc(used, func(r rune) bool { return !strings.ContainsRune(a.chars, r) }) {
			return a
		}
	}
	slices.Sort(used)
	return alphabet{"mixed", string(used)}
}

// decode returns the bytes a token in alphabet a encodes, when a is a byte encoding.
func (a alphabet) decode(t string) ([]byte, bool) {
	var b []byte
	var err error
	switch a.name {
	case "hex", "HEX":
		b, err = hex.DecodeString(t)
	case "base64url":
		b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(t, "="))
	case "base64":
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(t, "="))
	default:
		return nil, false
	}
	return b, err == nil
}

// positionBits estimates the entropy of one token position from the characters seen
// there. A spread of values consistent with a uniform choice from k characters is
// credited log2(k) bits; a narrower spread is credited its Miller–Madow corrected
// Shannon entropy, which is what a counter or clock digit shows.
func positionBits(column []byte, k int) float64 {
	n := float64(len(column))
	counts := map[byte]float64{}
	for _, c := range column {
		counts[c]++
	}
	m := float64(len(counts))
	if m <= 1 {
		return 0
	}
	kf := float64(k)
	q1, q2 := math.Pow(1-1/kf, n), math.Pow(1-2/kf, n)
	mean := kf * (1 - q1)
	variance := kf*q1 + kf*(kf-1)*q2 - kf*kf*q1*q1
	full := math.Log2(kf)
	if m >= mean-4*math.Sqrt(math.Max(variance, 0))-1 {
		return full
	}
	h := 0.0
	for _, c := range counts {
		p := c / n
		h -= p * math.Log2(p)
	}
	return math.Min(full, h+(m-1)/(2*n*math.Ln2))
}

// bitTests runs FIPS 140-2 style statistics (monobit, poker, runs, long run) on bits
// and returns what fails. The thresholds are wide (about five standard deviations) so
// that random tokens do not fail by chance.
func bitTests(data []byte) []string {
	n := len(data) * 8
	if n < 256 {
		return nil
	}
	bit := func(i int) int { return int(data[i/8]>>(7-i%8)) & 1 }
	var out []string
	ones, runs, longest, run := 0, 1, 1, 1
	for i := range n {
		ones += bit(i)
		if i > 0 {
			if bit(i) == bit(i-1) {
				run++
			} else {
				runs++
				run = 1
			}
			longest = max(longest, run)
		}
	}
	nf := float64(n)
	if z := math.Abs(float64(ones)-nf/2) / math.Sqrt(nf/4); z > 5 {
		out = append(out, fmt.Sprintf("monobit: %d of %d bits are ones", ones, n))
	}
	p := float64(ones) / nf
	if p > 0 && p < 1 {
		mean := 2*nf*p*(1-p) + 1
		sd := 2 * math.Sqrt(nf) * p * (1 - p)
		if z := math.Abs(float64(runs)-mean) / sd; z > 5 {
			out = append(out, fmt.Sprintf("runs: %d runs of equal bits where about %.0f are expected", runs, mean))
		}
	}
	if longest >= 34 {
		out = append(out, fmt.Sprintf("long run: %d equal bits in a row", longest))
	}
	var nibbles [16]float64
	for _, b := range data {
		nibbles[b>>4]++
		nibbles[b&15]++
	}
	m := float64(len(data) * 2)
	x := 0.0
	for _, f := range nibbles {
		x += f * f
	}
	if x = 16/m*x - m; x > 55 {
		out = append(out, fmt.Sprintf("poker: 4-bit patterns are uneven (X = %.1f, 15 degrees of freedom)", x))
	}
	return out
}
