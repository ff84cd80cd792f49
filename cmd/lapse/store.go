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
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*redis.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

// openStore opens the store a configuration names: "sqlite" (or "") is
// the embedded store in dataDir; redis://, rediss:// and
// redis+cluster:// URLs name a shared Redis; postgres:// and
// postgresql:// URLs a shared PostgreSQL database.
func openStore(ctx context.Context, store, dataDir string) (backend, error) {
	switch {
	case store == "" || store == "sqlite":
		return sqlite.Open(filepath.Join(dataDir, "lapse.db"))
	case strings.HasPrefix(store, "redis://"), strings.HasPrefix(store, "rediss://"), strings.HasPrefix(store, "redis+cluster://"):
		goredis.SetLogger(quietRedis{}) // lapse reports store errors itself
		st, err := redis.Open(ctx, store)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", redactURL(store), err)
		}
		return st, nil
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		st, err := postgres.Open(ctx, store)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", redactURL(store), err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %q: use sqlite, a redis://, rediss:// or redis+cluster:// URL, or a postgres:// URL", redactURL(store))
}

// quietRedis keeps go-redis from printing to stderr on its own.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// redactURL hides a password in a store URL, for messages.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://[REDACTED]@" + rest[at+1:]
	}
	return u
}
