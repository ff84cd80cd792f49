package lapse_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

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

func FuzzParseToken(f *testing.F) {
	f.Add(lapse.NewToken().Reveal())
	f.Add("lps_")
	f.Add("")
	f.Add(strings.Repeat("z", lapse.TokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := lapse.ParseToken(s)
		if err != nil {
			return
		}
		if tok.Reveal() != s || len(s) != lapse.TokenLen || !strings.HasPrefix(s, lapse.TokenPrefix) {
			t.Fatalf("ParseToken accepted %q", s)
		}
	})
}
