-- API keys (issue 22): looked up by the id in the key itself; only the
-- SHA-256 of the whole key is kept. Scopes are space-separated. Times are
-- Unix nanoseconds, 0 for none.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    revoked_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
