-- Passkeys (package passkey): a subject's WebAuthn credentials and the
-- challenges of their ceremonies. Times are Unix nanoseconds (UTC); 0
-- means unset.

-- Nothing here is secret: the private keys stay in the authenticators.
-- A credential id is unique per subject; every lookup names the subject.
-- sign_count is the newest signature counter seen (clone detection).
CREATE TABLE passkeys (
    id                 TEXT    PRIMARY KEY,
    subject            TEXT    NOT NULL,
    credential_id      BLOB    NOT NULL,
    user_handle        BLOB    NOT NULL,
    public_key         BLOB    NOT NULL,
    name               TEXT    NOT NULL,
    sign_count         INTEGER NOT NULL,
    backup_eligible    INTEGER NOT NULL,
    backup_state       INTEGER NOT NULL,
    transports         TEXT    NOT NULL, -- comma-separated
    aaguid             BLOB    NOT NULL,
    attestation_format TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (subject, credential_id)
) STRICT;

CREATE INDEX passkeys_by_subject ON passkeys (subject, created_at);

-- Challenges awaiting their response, keyed by the SHA-256 of the
-- challenge, each taken (deleted) once.
CREATE TABLE webauthn_challenges (
    hash       BLOB    PRIMARY KEY,
    subject    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    ceremony   TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
