// Package sqlite is lapse's embedded store: one SQLite database file in
// WAL mode, through the pure-Go modernc.org/sqlite driver (no cgo).
//
// A change returns only once it is durable: it survives a crash of the
// process or of the machine. One connection
// writes, a small pool reads; SQLite serialises writers anyway, and one
// writer avoids busy retries. Concurrent changes commit together, many
// transactions in one SQLite transaction and one fsync (group commit,
// commit.go), each acknowledged only once that commit is durable.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lapsehq/lapse"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a [lapse.Store] in one SQLite file. It is safe for concurrent
// use. One lapse serve should own a file (its verify cache hears only its
// own changes); the lapse tools may open it beside the server, since
// SQLite serialises their writes.
type Store struct {
	w *sql.DB // the one writer
	r *sql.DB // readers

	byID, byToken *sql.Stmt // prepared on r

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt // the writer's statements, parsed once
	closed bool

	// The group commit (commit.go): the write transactions waiting for a
	// batch, and whether a caller is leading one.
	gc       sync.Mutex
	queue    []*txReq
	leading  bool
	maxBatch int
	careful  int       // batches still to run with savepoints; only the leader touches it
	syncing  int       // batches committed, not yet synced
	want     int       // the size of the last batch committed
	filled   sync.Cond // on gc: a sync ended, or the queue reached want

	dur *durability // which commits are durable (durable.go)
}

// Options tunes a [Store]. The zero value is what [Open] uses.
type Options struct {
	// MaxBatch is how many write transactions at most commit together,
	// in one SQLite transaction and one fsync (group commit; each is
	// still acknowledged only once that commit is durable). Zero means
	// 256; 1 commits every transaction alone, as a store without group
	// commit would.
	MaxBatch int
}

var (
	_ lapse.Store         = (*Store)(nil)
	_ lapse.EventLog      = (*Store)(nil)
	_ lapse.ActiveCounter = (*Store)(nil)
	_ lapse.Pinger        = (*Store)(nil)
	_ lapse.ExpiryIndex   = (*Store)(nil)
	_ lapse.Purger        = (*Store)(nil)
	_ lapse.AuditLog      = (*Store)(nil)
)

// Open opens (creating it if needed) the database at path and brings its
// schema up to date. The file and its directory are made readable by
// their owner only.
func Open(path string) (*Store, error) {
	return OpenOptions(path, Options{})
}

// OpenOptions is [Open] with options.
func OpenOptions(path string, o Options) (*Store, error) {
	if o.MaxBatch < 0 {
		return nil, fmt.Errorf("sqlite: MaxBatch %d is negative", o.MaxBatch)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	} else {
		f.Close()
	}
	// The writer's page cache is 16 MiB. A larger one made commits slower
	// while the file is smaller than 1 GiB less the cache: when
	// balance_nonroot puts sibling pages in page-number order, SQLite swaps
	// two numbers through the page number of the 1 GiB mark, and the
	// commit that follows walks the cache's whole hash table to drop pages
	// past the file's end, a walk that grows with the pages cached; at
	// 64 MiB it was 6 % of a create's time (BENCHMARKS.md, issue 18). Temp
	// files and statement journals are kept in memory, and a sweep of
	// 100,000 expiries among a million sessions stays within its goal. The
	// write-ahead log a burst grew is cut back to 64 MiB when it restarts.
	// A reader's page cache is 4 MiB: a reader only looks rows up, the OS
	// page cache holds the file anyway, and four readers with the writer's
	// cache each would cost 48 MiB more of the process's memory
	// (docs/architecture.md).
	// The writer checkpoints the log into the database every 10,000 pages
	// (40 MiB) instead of SQLite's 1,000: a checkpoint runs on the writer,
	// in the commit of the batch that crossed the mark, and costs the
	// database file's fsync and a write of each page the log holds, once
	// however many times it was rewritten since; at 1,000 pages creates
	// checkpointed every few batches, and a seventh of the writer's time
	// went to it (BENCHMARKS.md, issue 18).
	// The writer commits at synchronous=NORMAL and the store syncs the log
	// itself before it acknowledges a change (durable.go).
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)" +
		"&_pragma=temp_store(MEMORY)&_pragma=journal_size_limit(67108864)"
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + pragmas
	w, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-16384)&_pragma=wal_autocheckpoint(10000)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-4096)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r, stmts: map[string]*sql.Stmt{}, maxBatch: o.MaxBatch}
	s.filled.L = &s.gc
	if err := s.migrate(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.readStmts(); err != nil {
		s.Close()
		return nil, err
	}
	// What the file holds now (the migrations, a log left by a crash or
	// written by another process) is made durable before anything is read
	// from it, so the event log may be read up to its end.
	// The file SQLite writes, and so its log, are found from SQLite:
	// path may be a symbolic link, or relative to a directory the process
	// leaves.
	var seq sql.NullInt64
	var file string
	err = s.r.QueryRow(`SELECT max(seq) FROM events`).Scan(&seq)
	if err == nil {
		err = s.w.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file)
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	s.dur = newDurability(file, seq.Int64)
	if err := s.dur.wait(s.dur.commit(0)); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: syncing %s: %w", path, err)
	}
	return s, nil
}

// exec runs one statement on the writer, outside a batch, and returns
// once its commit is durable.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.dur.failed(); err != nil {
		return nil, syncFailed(err)
	}
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(err)
	}
	if err := s.dur.wait(s.dur.commit(0)); err != nil {
		return nil, syncFailed(err)
	}
	return res, nil
}

// readStmts prepares the reads of a verify that misses the cache.
func (s *Store) readStmts() error {
	var err error
	if s.byID, err = s.r.Prepare(sessionByIDQuery); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if s.byToken, err = s.r.Prepare(sessionByTokenQuery); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations newer than the database's
// user_version, each in its own immediate transaction that reads the
// version again, so two processes opening one new file cannot both apply
// a step.
func (s *Store) migrate() error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for {
		tx, err := s.w.Begin()
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		var version int
		if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: reading schema version: %w", err)
		}
		if version >= len(names) {
			tx.Rollback()
			if version > len(names) {
				return fmt.Errorf("sqlite: database schema version %d is newer than this lapse (%d)", version, len(names))
			}
			return nil
		}
		body, err := migrations.ReadFile(names[version])
		if err == nil {
			_, err = tx.Exec(string(body))
		}
		if err == nil {
			_, err = tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", version+1))
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", names[version], err)
		}
	}
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	s.mu.Lock()
	s.closed = true
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	for _, st := range []*sql.Stmt{s.byID, s.byToken} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	s.mu.Unlock()
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// wrap turns a driver error into a lapse error.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var le *lapse.Error
	if errors.As(err, &le) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store did not answer in time", Err: err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return &lapse.Error{Code: lapse.CodeConflict, Message: "a session with this id or token exists", Err: err}
	}
	return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store failed", Err: err}
}

func notFound() error {
	return &lapse.Error{Code: lapse.CodeSessionNotFound, Message: "no such session"}
}

// wtx is a write transaction of inTx. Its statements are parsed once per
// store and kept: the driver would otherwise parse each statement again
// at every call, which is about half the CPU of a small write. They run
// under ctx, the batch's context, whatever context their caller passes:
// one caller's cancel must not interrupt a transaction that holds other
// callers' writes (SQLite may roll back the whole of it).
type wtx struct {
	*sql.Tx
	s     *Store
	ctx   context.Context
	new   map[string]*sql.Stmt // statements this transaction parsed for itself
	bound map[string]*sql.Stmt // the store's statements bound to this transaction
	b     *batchState          // what the batch's transactions share
}

// stmt returns query prepared, bound to t. A statement the store has not
// kept yet is parsed once for t alone (the writer's one connection is t's
// until it ends) and kept by inTx after it. A kept one is bound to t once
// and reused by the batch's later transactions (binding allocates a
// statement and registers it with t: work the writer did again for every
// statement of every create), until a use of it fails (forget). Every
// query passed here must be one of a bounded set: the store keeps each
// for its lifetime. The statement closes with t; callers do not close it.
func (t wtx) stmt(query string) (*sql.Stmt, error) {
	ctx := t.ctx
	if st, ok := t.new[query]; ok {
		return st, nil
	}
	if st, ok := t.bound[query]; ok {
		return st, nil
	}
	t.s.mu.Lock()
	st, ok := t.s.stmts[query]
	t.s.mu.Unlock()
	if ok {
		st = t.Tx.StmtContext(ctx, st)
		t.bound[query] = st
		return st, nil
	}
	st, err := t.Tx.PrepareContext(ctx, query)
	if err == nil {
		t.new[query] = st
	}
	return st, err
}

// keep prepares the statements a transaction parsed for itself on the
// writer, now free, for the transactions after it. It holds no lock while
// it waits for the writer, which another transaction may hold.
func (s *Store) keep(ctx context.Context, parsed map[string]*sql.Stmt) {
	for q := range parsed {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue // parsed again next time
		}
		s.mu.Lock()
		if _, ok := s.stmts[q]; ok || s.closed {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.mu.Unlock()
	}
}

// forget drops query's bound statement after a use of it failed with
// err: a statement whose binding failed carries that error to every use,
// so it is bound again at the next rather than failing the rest of the
// batch. A statement's own failure (a constraint) drops it too: rare, and
// binding again is cheap.
func (t wtx) forget(query string, err error) {
	if err != nil {
		delete(t.bound, query)
	}
}

// ExecContext runs query in t, under t's context.
func (t wtx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(t.ctx, args...)
	t.forget(query, err)
	return res, err
}

// QueryContext runs query in t, under t's context.
func (t wtx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(t.ctx, args...)
	t.forget(query, err)
	return rows, err
}

// QueryRowContext runs query in t, under t's context.
func (t wtx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		return t.Tx.QueryRowContext(t.ctx, query, args...) // fails again, with the error
	}
	row := st.QueryRowContext(t.ctx, args...)
	t.forget(query, row.Err())
	return row
}

// Ping implements [lapse.Pinger]: it runs a query on the reader pool.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return wrap(s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one))
}
