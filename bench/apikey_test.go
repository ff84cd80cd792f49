package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/httpapi"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/sqlite"
)

// BenchmarkAuthenticateKey compares, in one run, what the API spends on
// a caller's key: the static key set (one SHA-256 and a constant-time
// compare, the baseline), a stored key served from the keyring's memory
// (within the propagation bound), and a stored key read from SQLite
// every time (each read past the bound, as with a bound of zero).
func BenchmarkAuthenticateKey(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "lapse.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clock := lapsetest.NewClock(time.Time{})
	m, err := lapse.New(lapse.Config{Store: st, Policy: policy(b), Clock: clock, PropagationBound: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ring, err := lapse.NewKeyring(m)
	if err != nil {
		b.Fatal(err)
	}
	key, _, err := ring.Create(ctx, lapse.KeySpec{Name: "bench", Scopes: []lapse.Scope{lapse.ScopeSessionsVerify}}, "bench", "")
	if err != nil {
		b.Fatal(err)
	}
	static := lapse.NewAPIKey()
	keys := httpapi.NewKeys(lapse.HashSecret(static))
	b.Run("static", func(b *testing.B) {
		for b.Loop() {
			if !keys.Allowed(static) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("keyring_cached", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := ring.Authenticate(ctx, key); !ok || err != nil {
				b.Fatal("refused", err)
			}
		}
	})
	// A bound of zero: every call reads the key from SQLite.
	m0, err := lapse.New(lapse.Config{Store: st, Policy: policy(b), Clock: clock, PropagationBound: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	ring0, err := lapse.NewKeyring(m0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("keyring_store_read", func(b *testing.B) {
		for b.Loop() {
			clock.Advance(time.Microsecond)
			if _, ok, err := ring0.Authenticate(ctx, key); !ok || err != nil {
				b.Fatal("refused", err)
			}
		}
	})
}
