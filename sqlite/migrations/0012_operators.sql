-- Console operators (issue 22): named people who sign in with a password
-- and a one-time code. Only the password's argon2id PHC string is kept.
-- Times are Unix nanoseconds, 0 for none.
CREATE TABLE operators (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    tenant        TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
