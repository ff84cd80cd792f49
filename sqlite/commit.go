package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Group commit.
//
// Every write transaction of the store (creates, revokes, activity
// writes, sweeps...) goes through inTx, which queues it. The first caller
// to find no batch running leads: it takes the queue (at most MaxBatch
// transactions, its own first), runs them one after another in one
// SQLite transaction, commits once — one fsync of the write-ahead log for
// the whole batch, since the store runs synchronous=FULL — and only then
// answers each caller. Then it hands the lead to the first caller still
// queued, whose transactions arrived while the batch was committing. No
// goroutine runs in the background and nothing waits for a batch to
// fill: under light load a batch is one transaction, committed at once;
// under heavy load the batches grow by themselves with the queue that
// forms during each fsync.
//
// Each transaction of a batch runs inside its own savepoint. One that fails is rolled back to its savepoint, alone, and
// its caller gets its error; the others of the batch commit as if it had
// never run. (The alternative, rolling back the batch and running it
// again one transaction at a time, would cost a second pass over the
// whole batch for any failure, and a refused create — a clock behind the
// sweep, a session limit, an unknown id on a revoke — is ordinary
// traffic; a savepoint costs two cheap statements per transaction.)
// Only a failure of the batch itself (BEGIN, a savepoint that cannot be
// rolled back, COMMIT) fails every transaction in it: then nothing of
// the batch was committed and every caller is told so.

// batchState is what the transactions of one batch share: the head of
// the event log and the sweep watermark, each read once per batch instead
// of once per transaction, and whether the keys of the events the batch
// appended are to be indexed when it ends, in one sorted insert for them
// all instead of one for each transaction. Only the batch's own
// transactions write while it runs (the writer is one connection, in one
// transaction), so what it read stays true as long as they keep it so
// (appendEvents, indexEvents and ExpireDue do); a savepoint rolled back
// restores the state it started from.
type batchState struct {
	known     bool   // the fields below were read
	seq, last int64  // the log's last record: its seq and time
	prev      []byte // and its hash, the next record's prev_hash
	indexed   int64  // indexed_until
	pending   bool   // the events after indexed are to be indexed at the end

	sweptKnown bool  // swept was read
	swept      int64 // the sweep watermark, swept_until
}

// readHead reads the head of the event log and indexed_until into b.
func (b *batchState) readHead(ctx context.Context, tx wtx) error {
	err := tx.QueryRowContext(ctx, `SELECT coalesce(seq, 0), coalesce(time, 0), coalesce(hash, x''),
		(SELECT value FROM store_state WHERE name = 'indexed_until')
		FROM (SELECT 1) LEFT JOIN (SELECT seq, time, hash FROM events ORDER BY seq DESC LIMIT 1)`).Scan(&b.seq, &b.last, &b.prev, &b.indexed)
	if err != nil {
		return err
	}
	if b.prev == nil {
		b.prev = []byte{} // the first record's: stored empty, not NULL
	}
	b.known = true
	return nil
}

// index indexes the keys of the events b has pending.
func (b *batchState) index(ctx context.Context, tx wtx) error {
	b.pending = false
	_, err := indexEvents(ctx, tx, b.indexed, b.seq)
	return err
}

// defaultMaxBatch is the largest batch when Options.MaxBatch is 0: big
// enough that a batch's fsync is a small part of its cost, small enough
// that one batch takes a few milliseconds.
const defaultMaxBatch = 256

// txReq is one write transaction waiting in the queue.
type txReq struct {
	ctx  context.Context
	fn   func(wtx) error
	done chan txDone // one message for each role the caller plays: lead, then its result
}

// txDone tells a queued caller either to lead the next batch or that its
// transaction is over, with its error.
type txDone struct {
	lead bool
	err  error
}

// inTx runs fn in a write transaction and returns once that transaction
// is durably committed, or failed. fn may run in a transaction shared
// with other callers' (a batch): it must touch the database only through
// tx, and its statements run under the batch's context, so cancelling
// ctx does not interrupt them (a batch holds other callers' writes); a
// ctx done before fn starts fails it with the store_unavailable code.
// fn runs on another goroutine than the caller's when another caller
// leads the batch; the caller sees whatever fn wrote once inTx returns.
func (s *Store) inTx(ctx context.Context, fn func(tx wtx) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan txDone, 1)}
	s.gc.Lock()
	s.queue = append(s.queue, r)
	lead := !s.leading
	s.leading = true
	s.gc.Unlock()
	if !lead {
		if d := <-r.done; !d.lead {
			return d.err
		}
	}
	s.lead()
	return (<-r.done).err
}

// lead runs one batch from the head of the queue (where the leader's own
// transaction is) and passes the lead on.
func (s *Store) lead() {
	s.gc.Lock()
	n := min(len(s.queue), s.maxBatch)
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.gc.Unlock()

	errs := s.runBatch(batch)
	for i, r := range batch {
		r.done <- txDone{err: errs[i]}
	}

	s.gc.Lock()
	if len(s.queue) > 0 {
		s.queue[0].done <- txDone{lead: true}
	} else {
		s.leading = false
		s.queue = nil // let the old backing array go
	}
	s.gc.Unlock()
}

// runBatch runs batch in one transaction and returns each one's error,
// as lapse errors.
func (s *Store) runBatch(batch []*txReq) []error {
	errs := make([]error, len(batch))
	fail := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = wrap(err)
			}
		}
		return errs
	}
	// The batch outlives any one caller's context.
	ctx := context.WithoutCancel(batch[0].ctx)
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	tx := wtx{Tx: sqlTx, s: s, ctx: ctx, new: map[string]*sql.Stmt{}, b: &batchState{}}
	defer func() {
		if len(tx.new) > 0 {
			s.keep(ctx, tx.new)
		}
	}()
	// Even a batch of one runs in a savepoint: one path for every
	// transaction, the one the conformance suite checks.
	ok := false
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = wrap(err)
			continue
		}
		if errs[i], err = savepoint(tx, r.fn); err != nil {
			tx.Rollback()
			return fail(err)
		}
		ok = ok || errs[i] == nil
	}
	if !ok {
		tx.Rollback()
		return errs
	}
	if tx.b.pending {
		if err := tx.b.index(ctx, tx); err != nil {
			tx.Rollback()
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return errs
}

// savepoint runs fn in a savepoint of tx and rolls it back if fn fails.
// It returns fn's error, wrapped, and separately an error of tx itself,
// after which tx is unusable.
func savepoint(tx wtx, fn func(wtx) error) (fnErr, txErr error) {
	if _, err := tx.ExecContext(tx.ctx, `SAVEPOINT batch_item`); err != nil {
		return nil, err
	}
	before := *tx.b
	if fnErr = runGuarded(tx, fn); fnErr != nil {
		if _, err := tx.ExecContext(tx.ctx, `ROLLBACK TO batch_item`); err != nil {
			return nil, errors.Join(fnErr, err)
		}
		*tx.b = before
	}
	if _, err := tx.ExecContext(tx.ctx, `RELEASE batch_item`); err != nil {
		return nil, err
	}
	return wrap(fnErr), nil
}

// runGuarded runs fn and turns a panic into its error: the panic of one
// caller's write must not leave the lead held and every later write
// waiting for it.
func runGuarded(tx wtx, fn func(wtx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: a write panicked: %v", p)
		}
	}()
	return fn(tx)
}
