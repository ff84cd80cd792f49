-- Expiry by watermark, and event keys indexed apart from the log, so that
-- a burst of expiries costs one append per session (see sweep.go).

-- swept_until: every session whose earliest deadline is at or before it
-- has its session.expired event; such a session reads as expired whatever
-- its row says, and no write brings it back. indexed_until: the events up
-- to this seq have their rows in event_sessions and event_subjects.
-- ordered_from: from this seq on, event times never decrease (the records
-- before it were written with times as given, and stay as they are).
CREATE TABLE store_state (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO store_state (name, value) VALUES
    ('swept_until', 0),
    ('indexed_until', (SELECT coalesce(max(seq), 0) FROM events)),
    ('ordered_from', (SELECT coalesce(max(seq), 1) FROM events));

-- The events of a session and of a subject, in seq order.
CREATE TABLE event_sessions (
    session_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE event_subjects (
    subject TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (subject, seq)
) STRICT, WITHOUT ROWID;

INSERT INTO event_sessions (session_id, seq) SELECT session_id, seq FROM events ORDER BY session_id, seq;
INSERT INTO event_subjects (subject, seq) SELECT subject, seq FROM events ORDER BY subject, seq;

-- The log itself keeps no index but its seq: no reader looks an event up
-- by id (unique by construction: a millisecond and 83 random bits), and
-- times never decrease along seq from ordered_from on (appendEvents), so a
-- time range is a seq range found by binary search, with the records
-- before it read whole. The copy keeps every record as it was.
CREATE TABLE events_log (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    tier       TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    prev_hash  BLOB    NOT NULL,
    hash       BLOB    NOT NULL
) STRICT;
INSERT INTO events_log SELECT seq, id, type, time, session_id, subject, tenant, tier, reason, actor, prev_hash, hash
    FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_log RENAME TO events;

-- Only sessions still to be warned: one warned for its warn_at, or with
-- no warning before its deadline, leaves the index, so its expiry does
-- not touch it.
DROP INDEX sessions_by_warn;
CREATE INDEX sessions_by_warn ON sessions (warn_at)
    WHERE status = 'active' AND warned_for != warn_at AND warn_at < min(idle_expires_at, expires_at);
