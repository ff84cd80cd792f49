package lapse_test

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// withChecksum returns "lps_", secret (43 base62 characters) and the
// base62 of sum.
func withChecksum(secret string, sum uint32) string {
	c := make([]byte, 6)
	n := uint64(sum)
	for i := len(c) - 1; i >= 0; i-- {
		c[i] = base62[n%62]
		n /= 62
	}
	return lapse.TokenPrefix + secret + string(c)
}

// legacyToken returns a token of the shape lapse issued before the time
// prefix: 43 random base62 characters and their plain CRC-32.
func legacyToken() string {
	b := make([]byte, 43)
	rand.Read(b)
	for i := range b {
		b[i] = base62[b[i]%62]
	}
	return withChecksum(string(b), crc32.ChecksumIEEE(b))
}

// storeLegacy puts in st a copy of s under a new id and a legacy token,
// which it returns, kept as lapse kept it before the time prefix: by its
// SHA-256.
func storeLegacy(t *testing.T, st lapse.Store, s *lapse.Session) string {
	t.Helper()
	tok := legacyToken()
	legacy := *s
	legacy.ID = lapse.NewSessionID(s.CreatedAt)
	legacy.TokenHash = sha256.Sum256([]byte(tok))
	if _, err := st.Create(ctx, &legacy, 0); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLegacyTokenVerifiesRotatesAndRevokes: a session stored under the
// full SHA-256 of a token issued before the time prefix still verifies
// through the Manager, steps up to a new token of the current shape (the
// old one living out its grace), and its token revokes it.
func TestLegacyTokenVerifiesRotatesAndRevokes(t *testing.T) {
	f := newFixture(t)
	_, s := f.create(t, lapse.CreateParams{})
	tok := storeLegacy(t, f.store, s)
	if _, err := lapse.ParseToken(tok); err != nil {
		t.Fatalf("ParseToken refused a legacy token: %v", err)
	}
	got, err := f.m.Verify(ctx, tok, lapse.VerifyOptions{})
	if err != nil || got.ID == s.ID {
		t.Fatalf("verify of the legacy token: %s, %v; want its own session", got.ID, err)
	}
	next, stepped, err := f.m.StepUp(ctx, tok, 2, []string{"pwd", "otp"}, lapse.ActorSubject)
	if err != nil || stepped.ID != got.ID || stepped.TokenHash != next.Hash() {
		t.Fatalf("step-up of the legacy token: %+v, %v", stepped, err)
	}
	if h := next.Hash(); h == sha256.Sum256([]byte(next.Reveal())) {
		t.Errorf("the step-up issued a token hashed as a legacy one")
	}
	if _, err := f.m.Verify(ctx, tok, lapse.VerifyOptions{}); err != nil {
		t.Errorf("the legacy token within its grace: %v", err)
	}
	if err := f.m.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.Verify(ctx, next.Reveal(), lapse.VerifyOptions{})
	wantCode(t, "the new token after the legacy one revoked the session", err, lapse.CodeSessionRevoked)
}

// TestSwappedChecksumFindsNoSession: a token's 43 characters with the
// other shape's checksum are well formed, but hashed as that shape: they
// find neither a legacy session nor a current one.
func TestSwappedChecksumFindsNoSession(t *testing.T) {
	f := newFixture(t)
	cur, s := f.create(t, lapse.CreateParams{})
	legacy := storeLegacy(t, f.store, s)
	for name, tok := range map[string]string{
		"legacy_with_timed_checksum": withChecksum(legacy[4:47], crc32.ChecksumIEEE([]byte(legacy[4:47]))^timedCRC(t, cur.Reveal())),
		"timed_with_plain_checksum":  withChecksum(cur.Reveal()[4:47], crc32.ChecksumIEEE([]byte(cur.Reveal()[4:47]))),
	} {
		_, err := f.m.Verify(ctx, tok, lapse.VerifyOptions{})
		wantCode(t, name, err, lapse.CodeSessionNotFound)
	}
	for _, tok := range []string{legacy, cur.Reveal()} {
		if _, err := f.m.Verify(ctx, tok, lapse.VerifyOptions{}); err != nil {
			t.Errorf("the token itself after: %v", err)
		}
	}
}

// timedCRC recovers the constant a current token's checksum is XORed
// with from tok, one such token.
func timedCRC(t *testing.T, tok string) uint32 {
	t.Helper()
	var sum uint64
	for i := 47; i < len(tok); i++ {
		sum = sum*62 + uint64(indexBase62(tok[i]))
	}
	return uint32(sum) ^ crc32.ChecksumIEEE([]byte(tok[4:47]))
}

func indexBase62(c byte) int {
	for i := range len(base62) {
		if base62[i] == c {
			return i
		}
	}
	return -1
}

// TestCorruptChecksumIsRefusedWithoutAStoreRead: a token of either
// shape with one checksum character changed is refused as an unknown
// one, and no store is read for it.
func TestCorruptChecksumIsRefusedWithoutAStoreRead(t *testing.T) {
	st := &readCounter{Store: lapsetest.NewStore()}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Store: st})
	_, s := create(t, m, lapse.CreateParams{})
	for name, tok := range map[string]string{"timed": lapse.NewToken().Reveal(), "legacy": storeLegacy(t, st, s)} {
		b := []byte(tok)
		b[len(b)-3] = base62[(indexBase62(b[len(b)-3])+1)%62]
		before := st.reads.Load()
		_, err := m.Verify(ctx, string(b), lapse.VerifyOptions{})
		wantCode(t, name, err, lapse.CodeSessionNotFound)
		if r := st.reads.Load() - before; r != 0 {
			t.Errorf("%s: %d store reads for a corrupt checksum, want 0", name, r)
		}
	}
}

// TestLegacyTokenIsServedFromTheCache: the cache is looked up first by
// the hash of a current token's shape, which a legacy token's session is
// not cached under; its own hash still finds it there, with no store
// read after the first.
func TestLegacyTokenIsServedFromTheCache(t *testing.T) {
	st := &readCounter{Store: lapsetest.NewStore()}
	m, _, _ := lapsetest.NewManager(t, lapse.Config{Store: st})
	_, s := create(t, m, lapse.CreateParams{})
	tok := storeLegacy(t, st, s)
	for range 3 {
		if _, err := m.Verify(ctx, tok, lapse.VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if r := st.reads.Load(); r != 1 {
		t.Errorf("3 verifies of a legacy token read the store %d times, want 1", r)
	}
}
