package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/postgres/pgtest"
	"github.com/lapsehq/lapse/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Spec{
		New: func(t *testing.T) lapse.Store { return open(t, pgtest.NewDatabase(t)) },
		// Every optional interface but Tidier: a sweep rewrites the rows
		// it expires, so no work is put off.
		Claims: []storetest.Capability{
			storetest.EventLog, storetest.AuditLog, storetest.ActiveCounter, storetest.Pinger,
			storetest.ExpiryIndex, storetest.Purger, storetest.ChangeFeed,
			storetest.DeliveryQueue, storetest.FactorStore, storetest.SessionLister,
		},
		Nodes: func(t *testing.T) (a, b lapse.Store, down func()) {
			srv := pgtest.NewServer(t)
			url := srv.NewDatabase(t)
			return open(t, url, postgres.WithHeartbeat(200*time.Millisecond)), open(t, url, postgres.WithHeartbeat(200*time.Millisecond)), srv.Stop
		},
	})
}
