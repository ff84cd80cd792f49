package lapse_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

func TestNewTokenShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := lapse.NewToken().Reveal()
		if len(tok) != lapse.TokenLen || !strings.HasPrefix(tok, lapse.TokenPrefix) {
			t.Fatalf("token %d chars with prefix %q, want %d chars starting %q", len(tok), tok[:4], lapse.TokenLen, lapse.TokenPrefix)
		}
		if _, err := lapse.ParseToken(tok); err != nil {
			t.Fatalf("a fresh token does not parse: %v", err)
		}
		if seen[tok] {
			t.Fatal("NewToken repeated a token")
		}
		seen[tok] = true
	}
}

func TestParseTokenRefusesDamage(t *testing.T) {
	tok := lapse.NewToken().Reveal()
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for name, s := range map[string]string{
		"empty":           "",
		"truncated":       tok[:len(tok)-1],
		"extended":        tok + "x",
		"wrong_prefix":    "lpk_" + tok[4:],
		"secret_changed":  flip(10),
		"checksum_change": flip(len(tok) - 1),
		"non_base62":      tok[:20] + "-" + tok[21:],
	} {
		if _, err := lapse.ParseToken(s); lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
			t.Errorf("%s: ParseToken = %v, want session_not_found", name, err)
		}
	}
}

func TestTokenNeverPrintsItsSecret(t *testing.T) {
	tok := lapse.NewToken()
	secret := tok.Reveal()[4:47]
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("issued", "token", tok)
	for _, out := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %s %+v", tok, tok, tok), b.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("output holds the secret: %s", out)
		}
	}
}

// FuzzParseToken: on tokens of both shapes (with the time prefix, and
// of old) and anything else, nothing panics, HashToken accepts what
// ParseToken does, and what it accepts is a token's length and prefix.
func FuzzParseToken(f *testing.F) {
	f.Add(lapse.NewToken().Reveal())
	f.Add(legacyToken())
	f.Add(lapse.NewAPIKey())
	f.Add("lps_")
	f.Add("")
	f.Add(strings.Repeat("z", lapse.TokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		lapse.ValidAPIKeyShape(s)
		tok, err := lapse.ParseToken(s)
		h, ok := lapse.HashToken(s)
		if ok != (err == nil) {
			t.Fatalf("HashToken ok %v, ParseToken %v for %q", ok, err, s)
		}
		if err != nil {
			return
		}
		if tok.Reveal() != s || len(s) != lapse.TokenLen || !strings.HasPrefix(s, lapse.TokenPrefix) || tok.Hash() != h {
			t.Fatalf("ParseToken accepted %q", s)
		}
	})
}

func TestNewEventIDSortsByTime(t *testing.T) { testTimeIDSorts(t, "evt_", lapse.NewEventID) }

func TestNewSessionIDSortsByTime(t *testing.T) { testTimeIDSorts(t, "ses_", lapse.NewSessionID) }

// testTimeIDSorts checks that newID's ids have prefix and 22 characters,
// never repeat, and sort by the millisecond they were made for.
func testTimeIDSorts(t *testing.T, prefix string, newID func(time.Time) string) {
	t.Helper()
	at := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := range 2000 {
		id := newID(at.Add(time.Duration(i/2) * time.Millisecond))
		if len(id) != len(prefix)+22 || !strings.HasPrefix(id, prefix) {
			t.Fatalf("id %q: want %s and 22 characters", id, prefix)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
		// Within one millisecond the random part decides; across
		// milliseconds the time part must.
		if i%2 == 0 && prev != "" && id <= prev {
			t.Fatalf("id %q of a later millisecond sorts before %q", id, prev)
		}
		prev = id
	}
	if a, b := newID(time.Unix(0, 0)), newID(time.Date(2080, 1, 1, 0, 0, 0, 0, time.UTC)); a[:len(prefix)+8] != prefix+"00000000" || b <= a {
		t.Errorf("ids %q (1970) and %q (2080) do not sort by time", a, b)
	}
}
