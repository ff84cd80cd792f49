package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lapsehq/lapse/postgres/pgtest"
)

// dbServer is a store server loadgen starts for the servers that share
// a store: a redis-server or a PostgreSQL.
type dbServer interface {
	serves() string // the servers it is for: lapse-redis or lapse-postgres
	name() string   // for reports: redis-server, postgres
	url() string
	cpu() time.Duration // user and system CPU time used so far, or 0
	stop()
}

// sharedDB returns the server of dbs that the servers of kind serve
// share, or nil.
func sharedDB(dbs []dbServer, serve string) dbServer {
	for _, db := range dbs {
		if db.serves() == serve {
			return db
		}
	}
	return nil
}

// startDB starts the store server of the servers of kind serve, to be
// stopped when loadgen ends.
func startDB(serve string) (dbServer, error) {
	var (
		db  dbServer
		err error
	)
	switch serve {
	case "lapse-redis":
		var rs *redisServer
		if rs, err = startRedis(); err == nil {
			fmt.Printf("redis: redis-server %s on %s (%s; no persistence)\n", rs.version(), rs.addr, rs.bin)
			db = rs
		}
	case "lapse-postgres":
		var pg *pgServer
		if pg, err = startPostgres(); err == nil {
			fmt.Printf("postgres: %s on %s (fsync off)\n", pg.version(), pg.srv.Addr)
			db = pg
		}
	default:
		err = fmt.Errorf("no store server for %q", serve)
	}
	if err != nil {
		return nil, err
	}
	cleanup.add(db.stop)
	return db, nil
}

// pgServer is a private PostgreSQL, started as the PostgreSQL store's
// tests start theirs (postgres/pgtest): initdb in a temporary directory,
// a free loopback port, fsync off (a benchmark simulates no machine
// crash), one database for lapse.
type pgServer struct {
	srv *pgtest.Server
	db  string
}

func startPostgres() (*pgServer, error) {
	srv, err := pgtest.Start()
	if err != nil {
		return nil, fmt.Errorf("the lapse-postgres servers need PostgreSQL (initdb and postgres, apt-get install postgresql), "+
			"or leave them out with -servers: %w", err)
	}
	db, err := srv.CreateDatabase("lapse")
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &pgServer{srv: srv, db: db}, nil
}

func (s *pgServer) serves() string { return "lapse-postgres" }
func (s *pgServer) name() string   { return "postgres" }
func (s *pgServer) url() string    { return s.db }
func (s *pgServer) stop()          { s.srv.Close() }

// version returns the server's version, or "?".
func (s *pgServer) version() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.db)
	if err != nil {
		return "?"
	}
	defer c.Close(ctx)
	var v string
	if c.QueryRow(ctx, `SHOW server_version`).Scan(&v) != nil {
		return "?"
	}
	return "PostgreSQL " + v
}

// cpu adds up the CPU time of the postmaster and of every process it
// started (its backends, the WAL writer, ...), from /proc.
func (s *pgServer) cpu() time.Duration {
	pid := s.srv.Pid()
	if pid == 0 {
		return 0
	}
	tick := 100.0 // USER_HZ on Linux
	total := 0.0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command, which is in parentheses: state,
		// ppid, ..., utime (14th field of the line), stime (15th).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); p != pid && ppid != pid {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += ut + st
	}
	return time.Duration(total / tick * 1e9)
}
