-- Passkeys (package passkey): a subject's WebAuthn credentials and the
-- challenges of their ceremonies. Times are Unix nanoseconds (UTC); 0
-- means unset.

-- Nothing here is secret: the private keys stay in the authenticators.
-- A credential id is unique per subject; every lookup names the subject.
-- sign_count is the newest signature counter seen (clone detection).
CREATE TABLE passkeys (
    id                 text     PRIMARY KEY,
    subject            text     NOT NULL,
    credential_id      bytea    NOT NULL,
    user_handle        bytea    NOT NULL,
    public_key         bytea    NOT NULL,
    name               text     NOT NULL,
    sign_count         bigint   NOT NULL,
    backup_eligible    boolean  NOT NULL,
    backup_state       boolean  NOT NULL,
    transports         text[]   NOT NULL,
    aaguid             bytea    NOT NULL,
    attestation_format text     NOT NULL,
    created_at         bigint   NOT NULL,
    last_used_at       bigint   NOT NULL DEFAULT 0,
    UNIQUE (subject, credential_id)
);

CREATE INDEX passkeys_by_subject ON passkeys (subject, created_at);

-- Challenges awaiting their response, keyed by the SHA-256 of the
-- challenge, each taken (deleted) once.
CREATE TABLE webauthn_challenges (
    hash       bytea  PRIMARY KEY,
    subject    text   NOT NULL,
    session_id text   NOT NULL,
    ceremony   text   NOT NULL,
    data       bytea  NOT NULL,
    expires_at bigint NOT NULL
);

CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
