package lapsetest

import (
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// NewManager returns a manager for a test, with the fake clock and the
// memory store it runs on. The fields of cfg left zero are filled in:
// Store with a [NewStore] closed when the test ends, Clock with a
// [NewClock] at its default time and Policy with [Policy]. The clock
// and store returned are cfg's after that when they are a *Clock and a
// *Store, and nil otherwise: a test that wraps the store keeps its own.
// NewManager fails the test if [lapse.New] refuses cfg.
func NewManager(t testing.TB, cfg lapse.Config) (*lapse.Manager, *Clock, *Store) {
	t.Helper()
	if cfg.Store == nil {
		st := NewStore()
		t.Cleanup(func() { st.Close() })
		cfg.Store = st
	}
	if cfg.Clock == nil {
		cfg.Clock = NewClock(time.Time{})
	}
	if cfg.Policy == nil {
		cfg.Policy = Policy()
	}
	m, err := lapse.New(cfg)
	if err != nil {
		t.Fatalf("lapse.New: %v", err)
	}
	clock, _ := cfg.Clock.(*Clock)
	st, _ := cfg.Store.(*Store)
	return m, clock, st
}
