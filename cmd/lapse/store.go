package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/postgres"
	"github.com/lapsehq/lapse/redis"
	"github.com/lapsehq/lapse/sqlite"
	goredis "github.com/redis/go-redis/v9"
)

// backend is what lapse serve and the tools need of a store; the
// embedded SQLite store, the Redis store and the PostgreSQL store are
// each one.
type backend interface {
	lapse.Store
	lapse.AuditLog
	lapse.DeliveryQueue
	lapse.KeyStore
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*redis.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

// openStore opens the store a configuration names: "sqlite" (or "") is
// the embedded store in dataDir; redis://, rediss:// and
// redis+cluster:// URLs name a shared Redis; postgres:// and
// postgresql:// URLs a shared PostgreSQL database. Its errors show the
// URL redacted.
func openStore(ctx context.Context, store lapse.SecretURL, dataDir string) (backend, error) {
	raw := store.Reveal()
	switch {
	case raw == "" || raw == "sqlite":
		return sqlite.Open(filepath.Join(dataDir, "lapse.db"))
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"), strings.HasPrefix(raw, "redis+cluster://"):
		goredis.SetLogger(quietRedis{}) // lapse reports store errors itself
		st, err := redis.Open(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", store, err)
		}
		return st, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		st, err := postgres.Open(ctx, raw)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", store, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %q: use sqlite, a redis://, rediss:// or redis+cluster:// URL, or a postgres:// URL", store)
}

// quietRedis keeps go-redis from printing to stderr on its own.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
