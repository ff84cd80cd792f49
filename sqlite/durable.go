package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/lapsehq/lapse"
)

// Durability.
//
// The writer commits at synchronous=NORMAL: a COMMIT writes the batch's
// frames into the write-ahead log and returns without an fsync. The store
// makes them durable itself, after the commit and outside the writer: the
// leader of a batch hands the lead to the next one, then syncs the log
// (fdatasync) and only then answers its callers. So a batch's statements
// run while the batch before it is being synced, instead of the writer
// waiting on every fsync, and an acknowledged change is as durable as at
// synchronous=FULL. One sync covers every commit that returned before it
// began, so leaders waiting at once share one (syncs group as commits do).
//
// Between a commit and its sync, the change is visible to the store's
// readers. The event log is read only up to what is durable (durableSeq
// syncs first when a reader would see more): the change feed, webhooks
// and the audit log read nothing that a power loss could take back, so
// no one outside hears of a change that may not have happened. The rest
// is read as committed: a session created in that window has a token no
// one holds yet (its caller has no answer); a session, key or operator
// ended or disabled in it reads so, which fails closed; and a grant (a
// role, a key) an authorized caller made may be used a moment before its
// caller hears it is durable.
//
// A failed fsync leaves it unknown which frames reached the disk (the
// kernel may have dropped the dirty pages it could not write, and a
// later fsync would succeed without them), so the store stops: that
// sync's callers and every write after it fail with store_unavailable
// until the store is opened again.

// syncFailed is the error of a write whose commit could not be synced:
// for good after a failed fsync, this once when the log could not even be
// opened (the write may yet be durable: its caller cannot know).
func syncFailed(err error) error {
	msg := "the session store could not make a write durable; it refuses writes until it is opened again"
	if fe := (*fsyncError)(nil); !errors.As(err, &fe) {
		msg = "the session store could not make a write durable"
	}
	return &lapse.Error{Code: lapse.CodeStoreUnavailable, Message: msg, Err: err}
}

// durability tracks which commits are durable.
type durability struct {
	db, wal, dir string       // the database's path as SQLite opened it, its log's, their directory's
	syncLog      func() error // d.sync; a test's stand-in

	mu        sync.Mutex
	cond      sync.Cond
	committed uint64      // commits that returned
	lastSeq   int64       // the event log's last seq at the last commit
	synced    uint64      // the commits durable
	seq       int64       // the event log's last durable seq
	syncing   bool        // a sync is running
	err       error       // a failed fsync's error: the store stops
	walFile   os.FileInfo // the log synced last (nil: none yet)
}

// newDurability tracks the commits of the database at path, the file
// SQLite opened (symbolic links resolved), whose event log ends at seq.
func newDurability(path string, seq int64) *durability {
	d := &durability{db: path, wal: path + "-wal", dir: filepath.Dir(path), seq: seq, lastSeq: seq}
	d.cond.L = &d.mu
	d.syncLog = d.sync
	return d
}

// commit records a commit that returned, after which the event log's last
// seq is seq (or unchanged, when seq is 0), and returns its number, to
// pass to wait. A reader that saw the log up to seq records it the same
// way (durableSeq): a sync that begins afterwards covers it.
func (d *durability) commit(seq int64) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.committed++
	d.lastSeq = max(d.lastSeq, seq)
	return d.committed
}

// wait returns once commit n is durable, syncing the log unless a sync
// that began after n is running, or the error of a failed sync. Only a
// failed fsync stops the store for good; an error before it (the log
// could not be opened) is returned to this caller, and the next wait
// tries again.
func (d *durability) wait(n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.synced < n {
		if d.err != nil {
			return d.err
		}
		if d.syncing {
			d.cond.Wait()
			continue
		}
		d.syncing = true
		upTo, seq := d.committed, d.lastSeq
		d.mu.Unlock()
		err := d.syncLog()
		d.mu.Lock()
		d.syncing = false
		d.cond.Broadcast()
		var fe *fsyncError
		switch {
		case errors.As(err, &fe):
			d.err = err
		case err != nil:
			return err
		default:
			d.synced, d.seq = max(d.synced, upTo), max(d.seq, seq)
		}
	}
	return nil
}

// fsyncError is a failed fsync: what it was to flush may be lost, and a
// later fsync would not say so.
type fsyncError struct{ err error }

func (e *fsyncError) Error() string { return "fsync: " + e.err.Error() }
func (e *fsyncError) Unwrap() error { return e.err }

// failed returns the error of a failed sync, or nil.
func (d *durability) failed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// durableSeq returns a seq up to which every event of the log is durable:
// the log's end as the reader sees it, once a sync that began after it
// was seen has ended (none is needed when it is known durable already).
// So the events of a batch that is committed but not yet synced, and
// those another process wrote and has not synced yet, wait for the sync
// instead of being read before it.
func (s *Store) durableSeq(ctx context.Context) (int64, error) {
	var last sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT max(seq) FROM events`).Scan(&last); err != nil {
		return 0, err
	}
	d := s.dur
	d.mu.Lock()
	known := d.seq
	d.mu.Unlock()
	if last.Int64 <= known {
		return last.Int64, nil
	}
	if err := d.wait(d.commit(last.Int64)); err != nil {
		return 0, syncFailed(err)
	}
	return last.Int64, nil
}

// sync makes durable what was written to the log. It opens the log by
// name each time: SQLite deletes it when its last connection closes
// (after checkpointing it into the database) and creates another. With
// no log, what it held is in the database, which is synced instead. A
// log new since the last sync has its directory synced too, as SQLite
// does for a log it creates, so that its name survives with its content.
func (d *durability) sync() error {
	f, err := os.OpenFile(d.wal, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(d.db, os.O_RDWR, 0)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := fdatasync(f); err != nil {
		return &fsyncError{err}
	}
	if d.walFile == nil || !os.SameFile(fi, d.walFile) {
		if err := syncDir(d.dir); err != nil {
			return &fsyncError{err}
		}
		d.walFile = fi // only the running sync writes it
	}
	return nil
}

// syncDir makes the names in dir durable. Windows has no such call (and
// needs none: NTFS journals its directories).
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
