package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

// heldSync replaces st's sync of the log with one that waits: entered
// receives once each sync starts, and each send on release lets one
// finish with the error sent. Once release is closed (by the test, or
// when it ends) syncs no longer wait.
func heldSync(t *testing.T, st *Store) (entered chan struct{}, release chan error, open func()) {
	t.Helper()
	entered, release = make(chan struct{}, 16), make(chan error)
	real := st.dur.syncLog
	st.dur.syncLog = func() error {
		entered <- struct{}{}
		if err := <-release; err != nil {
			return err
		}
		return real()
	}
	var once sync.Once
	open = func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	return entered, release, open
}

// waitFor fails t unless ch receives within a generous guard: the test
// checks that something happens, not how soon.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not happen in 30 s", what)
	}
}

// createAsync creates s in the background and returns where its error
// arrives.
func createAsync(st *Store, s *lapse.Session) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := st.Create(ctx, s, 0)
		done <- err
	}()
	return done
}

// TestCreateWaitsForItsSync: a create is committed before its log is
// synced, and returns only after the sync; until then its session is
// readable, but a reader of the event log that sees its event waits for
// a sync before it returns it.
func TestCreateWaitsForItsSync(t *testing.T) {
	st := openTest(t)
	entered, _, open := heldSync(t, st)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := session("alice", at)
	done := createAsync(st, s)

	waitFor(t, entered, "the create's sync")
	select {
	case err := <-done:
		t.Fatalf("Create returned (%v) before its commit was synced", err)
	default:
	}
	if _, err := st.Session(ctx, s.ID); err != nil {
		t.Fatalf("the committed session is not readable while its sync runs: %v", err)
	}
	read := make(chan []lapse.Event, 1)
	go func() {
		evs, err := st.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID})
		if err != nil {
			t.Error(err)
		}
		read <- evs
	}()
	// The reader has read the log's end (past the last durable event)
	// once it has asked for a sync.
	asked := make(chan struct{})
	go func() {
		for guard := time.Now().Add(30 * time.Second); time.Now().Before(guard); time.Sleep(time.Millisecond) {
			st.dur.mu.Lock()
			n := st.dur.committed
			st.dur.mu.Unlock()
			if n >= 3 { // the open's sync, the create's, the reader's
				close(asked)
				return
			}
		}
	}()
	waitFor(t, asked, "the reader's request for a sync")
	select {
	case evs := <-read:
		t.Fatalf("the event log was read before its last event was durable: %v", evs)
	default:
	}

	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if evs := <-read; len(evs) != 1 || evs[0].Type != lapse.EventCreated {
		t.Fatalf("events read once durable: %v; want the create's", evs)
	}
	evs, err := st.QueryEvents(ctx, lapse.EventQuery{SessionID: s.ID})
	if err != nil || len(evs) != 1 || evs[0].Type != lapse.EventCreated {
		t.Fatalf("events after the sync: %v, %v; want the create's", evs, err)
	}
	if recs, err := st.ChainRecords(ctx, 0, 10); err != nil || len(recs) != 1 {
		t.Fatalf("chain records after the sync: %d, %v; want 1", len(recs), err)
	}
}

// TestNextBatchRunsDuringSync: while one batch's sync runs, the next
// batch commits (the writer does not wait for the fsync), and it is
// answered only after a sync that began after its commit.
func TestNextBatchRunsDuringSync(t *testing.T) {
	st := openTest(t)
	entered, release, _ := heldSync(t, st)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	first, second := session("alice", at), session("bob", at)
	done1 := createAsync(st, first)
	waitFor(t, entered, "the first batch's sync")

	done2 := createAsync(st, second)
	committed := make(chan struct{})
	go func() {
		for guard := time.Now().Add(30 * time.Second); time.Now().Before(guard); time.Sleep(time.Millisecond) {
			if _, err := st.Session(ctx, second.ID); err == nil {
				close(committed)
				return
			}
		}
	}()
	waitFor(t, committed, "the second batch's commit while the first one's sync is held")

	release <- nil // the first sync, which began before the second commit
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	waitFor(t, entered, "a second sync, for the second batch")
	select {
	case err := <-done2:
		t.Fatalf("the second create returned (%v) on a sync that began before its commit", err)
	default:
	}
	release <- nil
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}

// TestFailedSyncStopsWrites: when a sync fails, the writes it was to make
// durable fail with store_unavailable, and so does every write after it
// (the disk may have dropped what it could not write, so a later sync
// proves nothing), while reads go on.
func TestFailedSyncStopsWrites(t *testing.T) {
	st := openTest(t)
	entered, release, _ := heldSync(t, st)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := session("alice", at)
	done := createAsync(st, s)
	waitFor(t, entered, "the create's sync")
	release <- &fsyncError{errors.New("EIO")}
	if err := <-done; lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Fatalf("Create after a failed sync: %v; want store_unavailable", err)
	}
	if _, err := st.Create(ctx, session("bob", at), 0); lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Fatalf("a later create: %v; want store_unavailable", err)
	}
	if _, err := st.Purge(ctx, at, 10); lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Fatalf("a later write outside a batch: %v; want store_unavailable", err)
	}
	if _, err := st.Session(ctx, s.ID); err != nil {
		t.Fatalf("reads stop too: %v", err)
	}
}

// TestSyncThatCouldNotStartIsRetried: a sync that fails before its
// fsync (the log could not be opened: too many open files) fails the
// writes it was for, with store_unavailable, but does not stop the
// store: the next write syncs and succeeds.
func TestSyncThatCouldNotStartIsRetried(t *testing.T) {
	st := openTest(t)
	entered, release, open := heldSync(t, st)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	done := createAsync(st, session("alice", at))
	waitFor(t, entered, "the create's sync")
	release <- errors.New("open: too many open files")
	if err := <-done; lapse.ErrorCode(err) != lapse.CodeStoreUnavailable {
		t.Fatalf("Create whose sync could not start: %v; want store_unavailable", err)
	}
	open()
	if _, err := st.Create(ctx, session("bob", at), 0); err != nil {
		t.Fatalf("a later create: %v; want it to succeed", err)
	}
}

// TestSyncWithoutLog: with no write-ahead log (SQLite deletes it when
// its last connection closes, after checkpointing it into the database)
// a sync flushes the database instead; with neither file, the sync fails
// rather than call a write durable that it cannot find. A log created
// afterwards is synced, and its directory with it.
func TestSyncWithoutLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lapse.db")
	d := newDurability(path, 0)
	if err := d.sync(); err == nil {
		t.Fatal("sync with neither the database nor its log: no error")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.sync(); err != nil {
		t.Fatalf("sync with no log: %v", err)
	}
	if err := os.WriteFile(path+"-wal", []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.walFile = nil
	if err := d.sync(); err != nil {
		t.Fatalf("sync of a new log: %v", err)
	}
	if d.walFile == nil {
		t.Fatal("the new log was synced without its directory")
	}
}

// TestSyncFindsTheLogThroughALink: a store opened through a symbolic
// link syncs the log SQLite writes, beside the link's target, not a log
// beside the link that does not exist.
func TestSyncFindsTheLogThroughALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	target, link := filepath.Join(dir, "data", "real.db"), filepath.Join(dir, "lapse.db")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}
	st, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var synced []string
	st.dur.syncLog = func() error {
		if _, err := os.Stat(st.dur.wal); err == nil {
			synced = append(synced, st.dur.wal)
		}
		return st.dur.sync()
	}
	if _, err := st.Create(ctx, session("alice", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), 0); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != real+"-wal" {
		t.Fatalf("the create synced %v; want the log SQLite writes, %s", synced, real+"-wal")
	}
}
