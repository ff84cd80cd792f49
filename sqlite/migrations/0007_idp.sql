-- Sign-in through an identity provider (OpenID Connect): the provider's
-- issuer, account ("sub") and session ("sid") a session was signed in
-- through, '' for a session created otherwise; found by the provider's
-- back-channel logout.
ALTER TABLE sessions ADD COLUMN idp_issuer  TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_sid     TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_by_idp_subject ON sessions (idp_issuer, idp_subject) WHERE idp_issuer != '' AND status = 'active';
CREATE INDEX sessions_by_idp_sid ON sessions (idp_issuer, idp_sid) WHERE idp_sid != '' AND status = 'active';

-- Single-use values (the jti of a logout token): a key is used until
-- "until" (Unix nanoseconds); past it, the row may be deleted or reused.
CREATE TABLE used_keys (
    key   TEXT    PRIMARY KEY,
    until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX used_keys_by_until ON used_keys (until);
