// Package postgres is a lapse store on PostgreSQL (13 or newer), for
// running several stateless lapse nodes on one database, the system of
// record most SaaS platforms already keep. Open it with a URL:
//
//	postgres://[user[:password]@]host[:port]/database[?options]
//
// Options are pgx's (sslmode, connect_timeout, pool_max_conns,
// search_path, ...). Unless the URL says otherwise the store connects
// with a 2-second timeout and keeps up to 16 connections. Its tables
// are created by embedded migrations when it opens; give lapse a
// database or a schema (search_path) of its own. docs/postgres.md has
// the whole design.
//
// # Atomicity and several nodes
//
// Every method is one transaction at READ COMMITTED. A change locks the
// rows it changes (SELECT ... FOR UPDATE), so two nodes changing one
// session take turns, and its events and its change notification commit
// with it or not at all. Create takes a transaction-scoped advisory lock
// on the subject, so the session limit holds under concurrent creates on
// any number of nodes.
//
// The audit chain stays one linear chain with any number of writers:
// every append locks the single row of chain_head, which holds the last
// seq and hash, until its transaction commits. Appends therefore take
// turns, seqs have no gaps, and seq order is commit order: a reader that
// sees event n sees every event before it. Appends come last in each
// transaction, so the lock is held for the shortest time.
//
// Expiry sweeping is shared by claiming rows: ExpireDue selects due
// sessions FOR UPDATE SKIP LOCKED and rewrites them as expired in the
// same transaction. Sweepers on several nodes take disjoint sessions and
// never wait on each other; a session whose row is locked by a sweeper
// (or by a write) is left to the next sweep, and once its row says
// expired no sweep selects it again, so each session.expired is recorded
// once. A node killed mid-sweep rolls its transaction back, and its
// sessions are swept by the next node.
//
// # Time
//
// Deadlines are data: every comparison is with a time the caller gives,
// never the database's now(). Times are stored as Unix nanoseconds.
//
// # Change feed
//
// Every transaction that changes an existing session (touch, rotate,
// end, expire; a new session is in nobody's cache) sends the token
// hashes it changed with pg_notify on the channel lapse_changes, in
// payloads of up to 123 hashes. PostgreSQL delivers a transaction's
// notifications when it commits, and those of different transactions in
// commit order. [Store.Changes] listens on a connection of its own and
// returns as soon as it cannot vouch that it hears every change: the
// connection failed, or a heartbeat it sends through the pool every
// second did not come back in time.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lapsehq/lapse"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of the store's options.
const (
	DefaultHeartbeat      = time.Second
	DefaultTimeout        = 5 * time.Second
	defaultConnectTimeout = 2 * time.Second
	defaultMaxConns       = 16
)

// Store is a [lapse.Store] in PostgreSQL. It is safe for concurrent use,
// by any number of goroutines and lapse nodes sharing the database.
type Store struct {
	pool      *pgxpool.Pool
	listen    *pgx.ConnConfig // for the change feed's own connection
	heartbeat time.Duration
	timeout   time.Duration
	nonce     string // tells this store's marks from other stores'
}

var (
	_ lapse.Store         = (*Store)(nil)
	_ lapse.EventLog      = (*Store)(nil)
	_ lapse.AuditLog      = (*Store)(nil)
	_ lapse.ActiveCounter = (*Store)(nil)
	_ lapse.Pinger        = (*Store)(nil)
	_ lapse.ExpiryIndex   = (*Store)(nil)
	_ lapse.Purger        = (*Store)(nil)
	_ lapse.ChangeFeed    = (*Store)(nil)
	_ lapse.DeliveryQueue = (*Store)(nil)
	_ lapse.FactorStore   = (*Store)(nil)
	_ lapse.EventRecorder = (*Store)(nil)
	_ lapse.SessionLister = (*Store)(nil)
)

// An Option changes a default of [Open].
type Option func(*Store)

// WithHeartbeat sets how often [Store.Changes] proves that its
// connection still receives notifications; 0 or less means
// [DefaultHeartbeat]. A silently broken feed is noticed within two
// heartbeats.
func WithHeartbeat(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.heartbeat = d
		}
	}
}

// WithTimeout sets how long one call may take before it fails with
// [lapse.CodeStoreUnavailable], whatever the caller's context allows; 0
// or less means [DefaultTimeout]. A database that hangs (a full disk, a
// lock never released, a network that drops packets silently) then
// costs a node seconds, not a request stuck for good.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// Open connects to the database at url, checks that it answers, brings
// its schema up to date and returns the store. It fails with
// [lapse.CodeInvalid] for a malformed URL and with
// [lapse.CodeStoreUnavailable] if the database does not answer.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, &lapse.Error{Code: lapse.CodeInvalid, Message: "postgres: invalid URL", Err: err}
	}
	if !hasOption(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if !hasOption(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	s := &Store{listen: cfg.ConnConfig.Copy(), heartbeat: DefaultHeartbeat, timeout: DefaultTimeout, nonce: lapse.NewID("")}
	for _, o := range opts {
		o(s)
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, wrap(err)
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// hasOption reports whether the URL sets the query option name.
func hasOption(raw, name string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has(name)
}

// migrateLock is the key of the advisory lock that migrations hold, so
// that nodes starting together apply each step once.
const migrateLock = 0x6c61707365 // "lapse"

// migrate applies the embedded migrations newer than the schema version
// in lapse_schema, all in one transaction under an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	// Creating the tables may take longer than a call: a minute.
	return s.inTxWithin(ctx, time.Minute, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS lapse_schema (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM lapse_schema`).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO lapse_schema (version) VALUES (0)`)
		}
		if err != nil {
			return err
		}
		if version > len(names) {
			return lapse.Errorf(lapse.CodeStoreUnavailable, "postgres: database schema version %d is newer than this lapse (%d)", version, len(names))
		}
		for _, name := range names[version:] {
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("postgres: migration %s: %w", name, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE lapse_schema SET version = $1`, len(names))
		return err
	})
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping implements [lapse.Pinger].
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return wrap(s.pool.Ping(ctx))
}

// bound gives one call the store's timeout (see [WithTimeout]), unless
// ctx ends sooner.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// wrap turns a driver error into a lapse error. Every failure to get an
// answer is [lapse.CodeStoreUnavailable]: lapse cannot vouch for a
// session it could not read.
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
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return &lapse.Error{Code: lapse.CodeConflict, Message: "a session with this id or token exists", Err: err}
	}
	return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: "the session store failed", Err: err}
}

// retryable reports whether err rolled its transaction back for a reason
// that another try may not meet: a deadlock or a serialization failure.
// The transaction did not commit, so running it again cannot apply it
// twice.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// inTx runs fn in a transaction and commits it, trying up to three times
// when the database rolled it back as a deadlock victim.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return s.inTxWithin(ctx, s.timeout, fn)
}

// inTxWithin is inTx with a timeout of its own.
func (s *Store) inTxWithin(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for range 3 {
		if err = s.tryTx(ctx, fn); !retryable(err) {
			break
		}
	}
	return wrap(err)
}

func (s *Store) tryTx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		// Roll back even when ctx has ended, but not for longer than a
		// call: a connection that cannot is closed.
		rb, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		tx.Rollback(rb)
		return err
	}
	return tx.Commit(ctx)
}

func notFound() error {
	return &lapse.Error{Code: lapse.CodeSessionNotFound, Message: "no such session"}
}

// ts and nanos convert between times and stored Unix nanoseconds; the
// zero time is stored as 0.
func ts(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
