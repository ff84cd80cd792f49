package lapsetest_test

import (
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Spec{
		New: func(t *testing.T) lapse.Store { return lapsetest.NewStore() },
		// Every optional interface but ChangeFeed (the store is not
		// shared between nodes) and Tidier (it puts nothing off).
		Claims: []storetest.Capability{
			storetest.EventLog, storetest.AuditLog, storetest.ActiveCounter, storetest.Pinger,
			storetest.ExpiryIndex, storetest.Purger,
			storetest.DeliveryQueue, storetest.FactorStore, storetest.SessionLister, storetest.EventRecorder,
			storetest.IdPIndex, storetest.ReplayGuard, storetest.DeviceBinder, storetest.KeyStore, storetest.OperatorStore,
		},
	})
}
