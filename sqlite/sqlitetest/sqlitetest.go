// Package sqlitetest gives a test a lapse.Manager on a private SQLite
// store in its temporary directory, with a fake clock.
package sqlitetest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/sqlite"
)

// Manager returns a manager of policy p (nil means [lapsetest.Policy])
// on a new SQLite store, closed when the test ends, and the fake clock
// it reads, stopped at [lapsetest.NewClock]'s default time.
func Manager(tb testing.TB, p *lapse.Policy) (*lapse.Manager, *lapsetest.Clock) {
	tb.Helper()
	st, err := sqlite.Open(filepath.Join(tb.TempDir(), "lapse.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if p == nil {
		p = lapsetest.Policy()
	}
	clock := lapsetest.NewClock(time.Time{})
	m, err := lapse.New(lapse.Config{Store: st, Policy: p, Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	return m, clock
}
