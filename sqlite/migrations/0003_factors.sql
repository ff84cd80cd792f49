-- Built-in second factors (package totp). A factor belongs to a subject
-- across tenants. Times are Unix nanoseconds (UTC); 0 means unset.

-- One TOTP factor per subject. secret is sealed with AES-256-GCM by the
-- factor service; its key is never in this database. last_step is the
-- newest RFC 6238 time step a code was accepted for (replay refusal).
CREATE TABLE totp_factors (
    subject      TEXT    PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER NOT NULL DEFAULT 0,
    last_step    INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Single-use recovery codes: only a SHA-256 of each (80 random bits,
-- bound to the subject) is kept.
CREATE TABLE recovery_codes (
    subject    TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, hash)
) STRICT, WITHOUT ROWID;

-- Every attempt at a code, kept as a record and counted for rate
-- limiting: outcome is pending, accepted, rejected or reused; all but
-- accepted count as failed.
CREATE TABLE factor_attempts (
    id         INTEGER PRIMARY KEY,
    subject    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    factor     TEXT    NOT NULL,
    time       INTEGER NOT NULL,
    outcome    TEXT    NOT NULL
) STRICT;

CREATE INDEX factor_attempts_failed_by_subject ON factor_attempts (subject, time) WHERE outcome != 'accepted';
CREATE INDEX factor_attempts_failed_by_session ON factor_attempts (session_id, time) WHERE outcome != 'accepted';
