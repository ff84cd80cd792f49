-- Sessions: only the SHA-256 of each token is kept. Times are Unix
-- nanoseconds (UTC); 0 means unset. The policy columns hold the effective
-- tier resolved at creation.
CREATE TABLE sessions (
    id               TEXT    PRIMARY KEY,
    token_hash       BLOB    NOT NULL UNIQUE,
    subject          TEXT    NOT NULL,
    tenant           TEXT    NOT NULL,
    tier             TEXT    NOT NULL,
    aal              INTEGER NOT NULL,
    amr              TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    end_reason       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_active_at   INTEGER NOT NULL,
    authenticated_at INTEGER NOT NULL,
    idle_expires_at  INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    warn_at          INTEGER NOT NULL,
    ended_at         INTEGER NOT NULL DEFAULT 0,
    ip               TEXT    NOT NULL DEFAULT '',
    user_agent       TEXT    NOT NULL DEFAULT '',
    metadata         TEXT    NOT NULL DEFAULT '',
    idle_timeout     INTEGER NOT NULL,
    absolute_timeout INTEGER NOT NULL,
    warn_before      INTEGER NOT NULL,
    require_aal      INTEGER NOT NULL,
    max_auth_age     INTEGER NOT NULL,
    max_sessions     INTEGER NOT NULL,
    remind_after     INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_by_subject ON sessions (subject, tenant, created_at);

-- The deadline index: active sessions by their earliest deadline.
CREATE INDEX sessions_by_deadline ON sessions (min(idle_expires_at, expires_at)) WHERE status = 'active';

-- Events are the outbox and the audit log: appended in the transaction of
-- the change they record, never updated; each holds the hash of the one
-- before it.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
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

CREATE INDEX events_by_session ON events (session_id);
