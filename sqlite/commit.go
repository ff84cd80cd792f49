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
// SQLite transaction and commits once. Then it hands the lead to the
// first caller still queued, whose transactions arrived while the batch
// ran, syncs the write-ahead log (one fsync for the whole batch, and for
// any batch committed meanwhile: durable.go) and only then answers each
// caller. No goroutine runs in the background: under light load a batch
// is one transaction, committed at once; under heavy load the batches
// grow by themselves with the queue that forms while each runs and syncs.
//
// A transaction that fails is rolled back alone, and its caller gets its
// error; the others of the batch commit as if it had never run (runBatch
// says how: savepoints, once a transaction has failed). Only a failure
// of the batch itself (BEGIN, a savepoint that cannot be rolled back,
// COMMIT, the log's sync) fails every transaction in it: then nothing of
// the batch was acknowledged and every caller is told so.

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
// fn may run twice, the second time from the same state (runBatch): it
// must be a function of the database and its inputs, and set what it
// returns through its closure the same way each time.
func (s *Store) inTx(ctx context.Context, fn func(tx wtx) error) error {
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan txDone, 1)}
	s.gc.Lock()
	s.queue = append(s.queue, r)
	lead := !s.leading
	s.leading = true
	if s.syncing > 0 && len(s.queue) == s.want {
		s.filled.Broadcast() // a leader may be waiting for this many
	}
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
// transaction is), passes the lead on, so that the next batch runs while
// this one's commit is synced (durable.go), and answers the batch once
// it is durable.
//
// A batch costs a fixed part (the pages every commit rewrites: the ends
// of the tables and indexes that grow, the log's head) beside its
// transactions' own, so the next leader does not start at once with the
// few transactions queued: it waits until the syncs under way are over
// (as a leader waited for its commit's fsync before the sync left the
// writer) or until as many transactions are queued as the last batch
// held, whichever comes first. Under load the queue fills while a batch
// syncs, and the batches overlap their syncs at the same size.
func (s *Store) lead() {
	s.gc.Lock()
	for s.syncing > 0 && len(s.queue) < s.want {
		s.filled.Wait()
	}
	n := min(len(s.queue), s.maxBatch)
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.gc.Unlock()

	errs, commit := s.runBatch(batch)

	s.gc.Lock()
	if commit > 0 {
		s.syncing++
		s.want = n
	}
	if len(s.queue) > 0 {
		s.queue[0].done <- txDone{lead: true}
	} else {
		s.leading = false
		s.queue = nil // let the old backing array go
	}
	s.gc.Unlock()

	if commit > 0 {
		err := s.dur.wait(commit)
		s.gc.Lock()
		s.syncing--
		s.filled.Broadcast()
		s.gc.Unlock()
		if err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = syncFailed(err)
				}
			}
		}
	}
	for i, r := range batch {
		r.done <- txDone{err: errs[i]}
	}
}

// carefulBatches is how many batches run with a savepoint for each
// transaction after a batch in which one failed.
const carefulBatches = 16

// runBatch runs batch in one transaction and returns each one's error,
// as lapse errors, and the number of its commit (durability.commit), 0
// when nothing was committed.
//
// A batch runs its transactions one after another, with no savepoint of
// their own, as long as none fails. When one does, the batch is rolled
// back to where it began and run again, in the same transaction, with a
// savepoint for each transaction, so that the failure is rolled back
// alone; and so are the next carefulBatches batches, since failures come
// in runs (a client retrying, a sweep racing revokes). A savepoint makes
// SQLite copy each page a transaction changes into its statement journal
// first: one for each transaction of a batch of creates was an eighth of
// its work, where one for the batch copies each page once. The second
// run starts from the same state as the first, with no other writer in
// between (the batch holds SQLite's write lock throughout) and the same
// transactions (a caller's context is looked at once, before the first),
// so a transaction that ran twice ends as it would have run once.
func (s *Store) runBatch(batch []*txReq) ([]error, uint64) {
	errs := make([]error, len(batch))
	fail := func(err error) ([]error, uint64) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = wrap(err)
			}
		}
		return errs, 0
	}
	if err := s.dur.failed(); err != nil {
		return fail(syncFailed(err))
	}
	var live []int // the transactions to run: those whose caller still waits
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = wrap(err)
		} else {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return errs, 0
	}
	// The batch outlives any one caller's context.
	ctx := context.WithoutCancel(batch[0].ctx)
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	tx := wtx{Tx: sqlTx, s: s, ctx: ctx, new: map[string]*sql.Stmt{}, bound: map[string]*sql.Stmt{}, b: &batchState{}}
	defer func() {
		if len(tx.new) > 0 {
			s.keep(ctx, tx.new)
		}
	}()
	commit, err := s.runTx(tx, batch, live, errs)
	if err != nil {
		return fail(err)
	}
	return errs, commit
}

// runTx runs the live transactions of batch in tx and commits it, unless
// all failed. It sets each one's error in errs and returns the commit's
// number (0: nothing committed), or an error of tx itself, after which
// nothing of it was committed.
func (s *Store) runTx(tx wtx, batch []*txReq, live []int, errs []error) (uint64, error) {
	if s.careful == 0 {
		failed, err := s.optimistic(tx, batch, live)
		if err != nil {
			tx.Rollback()
			return 0, err
		}
		if !failed {
			return s.commit(tx)
		}
		*tx.b = batchState{}
		s.careful = carefulBatches + 1
	}
	s.careful--
	ok := false
	for _, i := range live {
		var err error
		if errs[i], err = savepoint(tx, batch[i].fn); err != nil {
			tx.Rollback()
			return 0, err
		}
		if errs[i] != nil {
			s.careful = carefulBatches
		}
		ok = ok || errs[i] == nil
	}
	if !ok {
		tx.Rollback()
		return 0, nil
	}
	return s.commit(tx)
}

// optimistic runs the live transactions of batch in tx with no savepoint
// of their own, inside one for the batch. If one fails, it rolls tx back
// to that savepoint, to where the batch began, and reports it. err is an
// error of tx itself, after which tx is unusable.
func (s *Store) optimistic(tx wtx, batch []*txReq, live []int) (failed bool, err error) {
	if _, err := tx.ExecContext(tx.ctx, `SAVEPOINT batch`); err != nil {
		return false, err
	}
	for _, i := range live {
		if runGuarded(tx, batch[i].fn) != nil {
			failed = true
			break
		}
	}
	if failed {
		if _, err := tx.ExecContext(tx.ctx, `ROLLBACK TO batch`); err != nil {
			return false, err
		}
	}
	_, err = tx.ExecContext(tx.ctx, `RELEASE batch`)
	return failed, err
}

// commit indexes the keys of the events tx appended, if it is to, and
// commits it, returning the commit's number (durability.commit).
func (s *Store) commit(tx wtx) (uint64, error) {
	if tx.b.pending {
		if err := tx.b.index(tx.ctx, tx); err != nil {
			tx.Rollback()
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	var seq int64
	if tx.b.known {
		seq = tx.b.seq
	}
	return s.dur.commit(seq), nil
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
