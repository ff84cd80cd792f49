package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// holdWriter starts a write transaction that waits for release, so that
// the transactions sent after it queue, and waits until n of them are
// queued: released, they commit as one batch.
func holdWriter(t *testing.T, st *Store) (queued func(n int), release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- st.inTx(ctx, func(wtx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	queued = func(n int) {
		t.Helper()
		for guard := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			st.gc.Lock()
			q := len(st.queue)
			st.gc.Unlock()
			if q >= n {
				return
			}
			if time.Now().After(guard) {
				t.Fatalf("only %d of %d transactions queued in 10 s", q, n)
			}
		}
	}
	release = func() {
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	return queued, release
}

// TestGroupCommitFailureStaysItsOwn: in one batch of creates, those that
// fail (an id that exists already) get their error and leave nothing
// behind, and every other create of the batch is committed.
func TestGroupCommitFailureStaysItsOwn(t *testing.T) {
	st := openTest(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	taken := session("alice", at)
	if _, err := st.Create(ctx, taken, 0); err != nil {
		t.Fatal(err)
	}
	queued, release := holdWriter(t, st)

	const n = 12
	sessions := make([]*lapse.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range sessions {
		sessions[i] = session("bob", at)
		if i%4 == 1 {
			sessions[i].ID = taken.ID // refused: the id exists
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Create(ctx, sessions[i], 0)
		}()
	}
	queued(n)
	release()
	wg.Wait()

	for i, sess := range sessions {
		got, err := st.SessionByToken(ctx, sess.TokenHash)
		if i%4 == 1 {
			if lapse.ErrorCode(errs[i]) != lapse.CodeConflict {
				t.Errorf("create %d with a taken id: error %v, want code %s", i, errs[i], lapse.CodeConflict)
			}
			if lapse.ErrorCode(err) != lapse.CodeSessionNotFound {
				t.Errorf("create %d failed but its token finds a session (%v, %v)", i, got, err)
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("create %d in the same batch as a failed one: %v, want it committed", i, errs[i])
		} else if err != nil || got.ID != sess.ID {
			t.Errorf("create %d acknowledged but not found: %v", i, err)
		}
	}
	var events int
	if err := st.r.QueryRow(`SELECT count(*) FROM events WHERE type = 'session.created'`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if want := 1 + n - n/4; events != want {
		t.Errorf("%d session.created events, want %d (one per committed create)", events, want)
	}
}

// TestOpenOptions: a store with MaxBatch 1 (every transaction committed
// alone) writes and refuses as the default one does; a negative MaxBatch
// is refused.
func TestOpenOptions(t *testing.T) {
	st, err := OpenOptions(t.TempDir()+"/lapse.db", Options{MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := session("alice", at), session("alice", at)
	b.ID = a.ID
	if _, err := st.Create(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, b, 0); lapse.ErrorCode(err) != lapse.CodeConflict {
		t.Fatalf("second create with the same id: %v, want code %s", err, lapse.CodeConflict)
	}
	if _, err := OpenOptions(t.TempDir()+"/x.db", Options{MaxBatch: -1}); err == nil {
		t.Error("MaxBatch -1 accepted")
	}
}

// TestPanickingWriteFailsAlone: a write that panics gets an error, its
// writes are rolled back, and the store goes on taking writes.
func TestPanickingWriteFailsAlone(t *testing.T) {
	st := openTest(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := session("alice", at)
	err := st.inTx(ctx, func(tx wtx) error {
		if _, err := tx.ExecContext(tx.ctx, `DELETE FROM sessions`); err != nil {
			return err
		}
		panic("a bug in a write")
	})
	if err == nil {
		t.Fatal("a panicking write returned no error")
	}
	if _, err := st.Create(ctx, s, 0); err != nil {
		t.Fatalf("Create after a panicking write: %v", err)
	}
	if _, err := st.Session(ctx, s.ID); err != nil {
		t.Fatalf("the session created after the panic: %v", err)
	}
}

// TestBatchChainsAndIndexesItsEvents: a batch whose transactions append
// events, some of them rolled back after appending (their transaction
// failed), leaves a log whose chain verifies, with the keys of every
// committed event indexed (a batch indexes them once, at its end) and
// none of a rolled-back one.
func TestBatchChainsAndIndexesItsEvents(t *testing.T) {
	st := openTest(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.Create(ctx, session("alice", at), 0); err != nil {
		t.Fatal(err)
	}
	queued, release := holdWriter(t, st)

	const n = 12
	sessions := make([]*lapse.Session, n)
	errs := make([]error, n)
	refused := errors.New("refused after its event")
	var wg sync.WaitGroup
	for i := range sessions {
		sessions[i] = session("bob", at)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%3 != 1 {
				_, errs[i] = st.Create(ctx, sessions[i], 0)
				return
			}
			errs[i] = st.inTx(ctx, func(tx wtx) error {
				if err := appendEvent(ctx, tx, lapse.NewEvent(lapse.EventCreated, sessions[i], "", lapse.ActorAPI, at)); err != nil {
					return err
				}
				return refused
			})
		}()
	}
	queued(n)
	release()
	wg.Wait()

	for i, err := range errs {
		if i%3 == 1 && !errors.Is(err, refused) {
			t.Errorf("transaction %d: error %v, want its own", i, err)
		} else if i%3 != 1 && err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	rep, err := lapse.VerifyChain(ctx, st, 0, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("chain after the batch: %+v, %v", rep, err)
	}
	var events, indexed, keyed, orphans int64
	if err := st.r.QueryRow(`SELECT count(*), max(seq), (SELECT value FROM store_state WHERE name = 'indexed_until'),
		(SELECT count(*) FROM event_sessions), (SELECT count(*) FROM event_sessions k WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = k.seq))
		FROM events`).Scan(&events, new(int64), &indexed, &keyed, &orphans); err != nil {
		t.Fatal(err)
	}
	if want := int64(1 + n - n/3); events != want || indexed != events || keyed != events || orphans != 0 {
		t.Errorf("%d events (want %d), indexed until %d, %d session keys, %d keys of no event: want every committed event indexed",
			events, want, indexed, keyed, orphans)
	}
	for i, sess := range sessions {
		evs, err := st.QueryEvents(ctx, lapse.EventQuery{SessionID: sess.ID})
		if want := 1 - i%3%2; err != nil || len(evs) != want {
			t.Errorf("transaction %d: %d events by its session (%v), want %d", i, len(evs), err, want)
		}
	}
}

// TestBatchIndexesAroundATidy: a Tidy in the middle of a batch of creates
// indexes the keys the batch had pending (and, with a small limit, only
// the first of them), and the batch indexes the rest at its end from the
// keys it kept: every event indexed once, each session's event found.
func TestBatchIndexesAroundATidy(t *testing.T) {
	for _, limit := range []int{2, 100} {
		st := openTest(t)
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		queued, release := holdWriter(t, st)
		var sessions []*lapse.Session
		errs := make(chan error, 9)
		queue := func(write func() error) {
			go func() { errs <- write() }()
			queued(len(sessions) + 1) // in the batch after those queued before it
			sessions = append(sessions, nil)
		}
		create := func() {
			s := session("alice", at)
			queue(func() error { _, err := st.Create(ctx, s, 0); return err })
			sessions[len(sessions)-1] = s
		}
		for range 4 {
			create()
		}
		queue(func() error { _, err := st.Tidy(ctx, limit); return err })
		for range 4 {
			create()
		}
		release()
		for range 9 {
			if err := <-errs; err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
		}
		var events, indexed, bySession, bySubject int64
		if err := st.r.QueryRow(`SELECT count(*), (SELECT value FROM store_state WHERE name = 'indexed_until'),
			(SELECT count(*) FROM event_sessions), (SELECT count(*) FROM event_subjects) FROM events`).Scan(&events, &indexed, &bySession, &bySubject); err != nil {
			t.Fatal(err)
		}
		if events != 8 || indexed != 8 || bySession != 8 || bySubject != 8 {
			t.Errorf("limit %d: %d events, indexed until %d, %d session keys, %d subject keys; want 8 of each", limit, events, indexed, bySession, bySubject)
		}
		for _, s := range sessions {
			if s == nil {
				continue
			}
			if evs, err := st.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID}); err != nil || len(evs) != 1 {
				t.Errorf("limit %d: events of %s: %d, %v; want its created event", limit, s.ID, len(evs), err)
			}
		}
	}
}

// TestSavepointsAfterAFailure: batches run without savepoints until a
// transaction fails; then that batch and the next carefulBatches run
// with them, and after that many batches with no failure, without again.
// Either way a failed create leaves nothing and its batch's others commit
// (TestGroupCommitFailureStaysItsOwn).
func TestSavepointsAfterAFailure(t *testing.T) {
	st := openTest(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	taken := session("alice", at)
	if _, err := st.Create(ctx, taken, 0); err != nil {
		t.Fatal(err)
	}
	if st.careful != 0 {
		t.Fatalf("careful = %d after a clean batch, want 0", st.careful)
	}
	dup := session("alice", at)
	dup.ID = taken.ID
	if _, err := st.Create(ctx, dup, 0); lapse.ErrorCode(err) != lapse.CodeConflict {
		t.Fatalf("a create with a taken id: %v, want conflict", err)
	}
	if st.careful != carefulBatches {
		t.Fatalf("careful = %d after a failure, want %d", st.careful, carefulBatches)
	}
	for i := range carefulBatches {
		if _, err := st.Create(ctx, session("bob", at), 0); err != nil {
			t.Fatal(err)
		}
		if want := carefulBatches - 1 - i; st.careful != want {
			t.Fatalf("careful = %d after %d clean batches, want %d", st.careful, i+1, want)
		}
	}
	if _, err := st.Create(ctx, session("carol", at), 0); err != nil || st.careful != 0 {
		t.Fatalf("a clean batch after them: %v, careful = %d; want none and 0", err, st.careful)
	}
}

// failAfter queues a transaction that calls between once, with the
// batch's writer held, and then fails: its batch is run again with
// savepoints (runBatch).
func failAfter(st *Store, between func()) <-chan error {
	done := make(chan error, 1)
	first := true
	go func() {
		done <- st.inTx(ctx, func(wtx) error {
			if first {
				first = false
				between()
			}
			return errors.New("refused")
		})
	}()
	return done
}

// execBetween returns a between for failAfter that starts query on the
// writer outside the batch and waits until it waits for the writer, and
// where the number of rows it changed arrives once it has run.
func execBetween(t *testing.T, st *Store, query string) (between func(), changed <-chan int64) {
	ch := make(chan int64, 1)
	return func() {
		waits := st.w.Stats().WaitCount
		go func() {
			res, err := st.exec(context.Background(), query)
			if err != nil {
				t.Error(err)
				ch <- -1
				return
			}
			n, _ := res.RowsAffected()
			ch <- n
		}()
		for guard := time.Now().Add(30 * time.Second); st.w.Stats().WaitCount == waits; time.Sleep(time.Millisecond) {
			if time.Now().After(guard) {
				t.Error("the other writer never waited for the writer")
				return
			}
		}
	}, ch
}

// TestRerunLetsNoWriterIn: a batch run again after a failure holds the
// write lock from its first run to its commit, so no other writer's
// change falls between the runs: a TOTP step that the batch uses and
// another writer tries to use too is used once, by one of them. (Rolled
// back and begun again, a batch let a writer in between, and a use whose
// first run had found the step free reported it used though its second
// run found it taken: a replayed code accepted.)
func TestRerunLetsNoWriterIn(t *testing.T) {
	st := openTest(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.PutTOTP(ctx, &lapse.TOTPFactor{ID: "f1", Subject: "alice", Secret: []byte("s"), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.ConfirmTOTP(ctx, "alice", "f1", 1, nil, now); err != nil {
		t.Fatal(err)
	}
	queued, release := holdWriter(t, st)
	var used bool
	usedErr := make(chan error, 1)
	go func() {
		var err error
		used, err = st.UseTOTPStep(ctx, "alice", "f1", 7, now)
		usedErr <- err
	}()
	queued(1)
	between, other := execBetween(t, st, `UPDATE totp_factors SET last_step = 7 WHERE id = 'f1' AND last_step < 7`)
	done := failAfter(st, between)
	queued(2)
	release()
	if err := <-done; err == nil {
		t.Fatal("the failing transaction succeeded")
	}
	if err := <-usedErr; err != nil {
		t.Fatal(err)
	}
	if n := <-other; used == (n == 1) {
		t.Fatalf("step 7 used by the batch: %v, by the other writer: %v; want exactly one", used, n == 1)
	}
}

// TestRerunRunsTheSameTransactions: a caller whose context ends between
// the two runs of a batch still has its transaction run in both, as it
// was in the first, so what later transactions of the batch read of it
// is what commits: a challenge taken in the batch was put in it.
func TestRerunRunsTheSameTransactions(t *testing.T) {
	st := openTest(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &lapse.Challenge{Hash: lapse.TokenHash{2}, Subject: "alice", Ceremony: lapse.CeremonyAssertion, Data: []byte("x"), ExpiresAt: now.Add(time.Minute)}
	queued, release := holdWriter(t, st)
	cctx, cancel := context.WithCancel(ctx)
	put := make(chan error, 1)
	go func() { put <- st.PutChallenge(cctx, c) }()
	queued(1)
	var got *lapse.Challenge
	took := make(chan error, 1)
	go func() {
		var err error
		got, err = st.TakeChallenge(ctx, "alice", c.Hash, now)
		took <- err
	}()
	queued(2)
	done := failAfter(st, cancel)
	queued(3)
	release()
	<-done
	perr, terr := <-put, <-took
	if terr != nil {
		t.Fatal(terr)
	}
	if (perr == nil) != (got != nil) {
		t.Fatalf("PutChallenge: %v; TakeChallenge found it: %v; want both or neither", perr, got != nil)
	}
}
