-- Step-up rotation keeps the replaced token's hash for a short grace.
ALTER TABLE sessions ADD COLUMN prev_token_hash BLOB;
ALTER TABLE sessions ADD COLUMN prev_valid_until INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX sessions_by_prev_token ON sessions (prev_token_hash) WHERE prev_token_hash IS NOT NULL;

-- The warn_at value a session.expiring_soon event was recorded for.
ALTER TABLE sessions ADD COLUMN warned_for INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_by_warn ON sessions (warn_at) WHERE status = 'active';

-- Purging finds sessions ended long ago.
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE status != 'active';

CREATE INDEX events_by_subject ON events (subject, seq);
CREATE INDEX events_by_time ON events (time);

-- Webhook delivery: each endpoint's cursor in the event log, and one row
-- per event to deliver to an endpoint.
CREATE TABLE webhook_cursors (
    endpoint TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
    id         INTEGER PRIMARY KEY,
    endpoint   TEXT    NOT NULL,
    event_seq  INTEGER NOT NULL,
    status     TEXT    NOT NULL,   -- pending, delivered, dead
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    UNIQUE (endpoint, event_seq)
) STRICT;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
