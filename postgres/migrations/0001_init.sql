-- lapse's schema on PostgreSQL. Times are Unix nanoseconds (UTC) in
-- bigint, as lapse gives them (the database's own clock is never read);
-- 0 means unset. Only the SHA-256 of each token is kept.

CREATE TABLE sessions (
    id               text     COLLATE "C" PRIMARY KEY,
    token_hash       bytea    NOT NULL UNIQUE,
    subject          text     NOT NULL,
    tenant           text     NOT NULL,
    tier             text     NOT NULL,
    aal              integer  NOT NULL,
    amr              text[]   NOT NULL,
    status           text     NOT NULL,
    end_reason       text     NOT NULL DEFAULT '',
    created_at       bigint   NOT NULL,
    last_active_at   bigint   NOT NULL,
    authenticated_at bigint   NOT NULL,
    idle_expires_at  bigint   NOT NULL,
    expires_at       bigint   NOT NULL,
    warn_at          bigint   NOT NULL,
    ended_at         bigint   NOT NULL DEFAULT 0,
    ip               text     NOT NULL DEFAULT '',
    user_agent       text     NOT NULL DEFAULT '',
    metadata         text     NOT NULL DEFAULT '',   -- the caller's JSON, byte for byte
    idle_timeout     bigint   NOT NULL,
    absolute_timeout bigint   NOT NULL,
    warn_before      bigint   NOT NULL,
    require_aal      integer  NOT NULL,
    max_auth_age     bigint   NOT NULL,
    max_sessions     integer  NOT NULL,
    remind_after     bigint   NOT NULL,
    -- Step-up rotation keeps the replaced token's hash for a short grace.
    prev_token_hash  bytea    UNIQUE,
    prev_valid_until bigint   NOT NULL DEFAULT 0,
    -- The warn_at value a session.expiring_soon event was recorded for.
    warned_for       bigint   NOT NULL DEFAULT 0,
    -- The earlier deadline, which the sweep orders by.
    deadline         bigint   GENERATED ALWAYS AS (least(idle_expires_at, expires_at)) STORED
);

CREATE INDEX sessions_by_subject ON sessions (subject, tenant, created_at);
CREATE INDEX sessions_by_created ON sessions (created_at DESC, id DESC);
-- The deadline index: active sessions by their earlier deadline.
CREATE INDEX sessions_by_deadline ON sessions (deadline) WHERE status = 'active';
-- Sessions still to be warned.
CREATE INDEX sessions_by_warn ON sessions (warn_at)
    WHERE status = 'active' AND warned_for <> warn_at AND warn_at < least(idle_expires_at, expires_at);
-- Purging finds sessions ended long ago.
CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE status <> 'active';

-- Events are the outbox and the audit log: appended in the transaction of
-- the change they record, never updated; each holds the hash of the one
-- before it. seq has no gaps: it is taken from chain_head, not from a
-- sequence (a rolled-back nextval would leave a hole in the chain).
CREATE TABLE events (
    seq        bigint PRIMARY KEY,
    id         text   NOT NULL,
    type       text   NOT NULL,
    time       bigint NOT NULL,
    session_id text   NOT NULL,
    subject    text   NOT NULL,
    tenant     text   NOT NULL,
    tier       text   NOT NULL,
    reason     text   NOT NULL,
    actor      text   NOT NULL,
    prev_hash  bytea  NOT NULL,
    hash       bytea  NOT NULL
);

CREATE INDEX events_by_session ON events (session_id, seq);
CREATE INDEX events_by_subject ON events (subject, seq);
CREATE INDEX events_by_time ON events (time);

-- The head of the audit chain: one row, locked by every append until its
-- transaction commits, so that any number of nodes append to one linear
-- chain, and seq order is commit order.
CREATE TABLE chain_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);
INSERT INTO chain_head (seq, hash) VALUES (0, '');

-- Webhook delivery: each endpoint's cursor in the event log, and one row
-- per event to deliver to an endpoint.
CREATE TABLE webhook_cursors (
    endpoint text   PRIMARY KEY,
    seq      bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint   text   NOT NULL,
    event_seq  bigint NOT NULL,
    status     text   NOT NULL,   -- pending, delivered, dead
    attempts   integer NOT NULL DEFAULT 0,
    next_at    bigint NOT NULL,
    last_error text   NOT NULL DEFAULT '',
    updated_at bigint NOT NULL,
    UNIQUE (endpoint, event_seq)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (updated_at DESC, id DESC) WHERE status = 'dead';

-- Built-in second factors (package totp). A factor belongs to a subject
-- across tenants. secret is sealed with AES-256-GCM by the factor service;
-- its key is never in this database. last_step is the newest RFC 6238
-- time step a code was accepted for (replay refusal).
CREATE TABLE totp_factors (
    subject      text   PRIMARY KEY,
    id           text   NOT NULL UNIQUE,
    secret       bytea  NOT NULL,
    created_at   bigint NOT NULL,
    confirmed_at bigint NOT NULL DEFAULT 0,
    last_step    bigint NOT NULL DEFAULT 0,
    last_used_at bigint NOT NULL DEFAULT 0
);

-- Single-use recovery codes: only a SHA-256 of each is kept.
CREATE TABLE recovery_codes (
    subject    text   NOT NULL,
    hash       bytea  NOT NULL,
    created_at bigint NOT NULL,
    used_at    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, hash)
);

-- Every attempt at a code, kept as a record and counted for rate
-- limiting: outcome is pending, accepted, rejected or reused; all but
-- accepted count as failed.
CREATE TABLE factor_attempts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject    text   NOT NULL,
    session_id text   NOT NULL,
    factor     text   NOT NULL,
    time       bigint NOT NULL,
    outcome    text   NOT NULL
);

CREATE INDEX factor_attempts_failed_by_subject ON factor_attempts (subject, time) WHERE outcome <> 'accepted';
CREATE INDEX factor_attempts_failed_by_session ON factor_attempts (session_id, time) WHERE outcome <> 'accepted';
