package postgres_test

import (
	"context"
	"testing"

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
	storetest.Run(t, func(t *testing.T) lapse.Store { return open(t, pgtest.NewDatabase(t)) })
}
