package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Spec{
		New: func(t *testing.T) lapse.Store {
			st, err := sqlite.Open(filepath.Join(t.TempDir(), "lapse.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		// Every optional interface but ChangeFeed: one lapse serve owns
		// a SQLite file.
		Claims: []storetest.Capability{
			storetest.EventLog, storetest.AuditLog, storetest.ActiveCounter, storetest.Pinger,
			storetest.ExpiryIndex, storetest.Tidier, storetest.Purger,
			storetest.DeliveryQueue, storetest.FactorStore, storetest.SessionLister, storetest.EventRecorder,
			storetest.IdPIndex, storetest.ReplayGuard, storetest.DeviceBinder, storetest.KeyStore, storetest.OperatorStore,
		},
	})
}
