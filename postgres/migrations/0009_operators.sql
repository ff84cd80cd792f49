-- Console operators (issue 22): named people who sign in with a password
-- and a one-time code. Only the password's argon2id PHC string is kept.
-- Times are Unix nanoseconds, 0 for none.
CREATE TABLE operators (
    id            text   COLLATE "C" PRIMARY KEY,
    name          text   COLLATE "C" NOT NULL UNIQUE,
    role          text   NOT NULL,
    tenant        text   NOT NULL,
    password_hash text   NOT NULL,
    created_at    bigint NOT NULL,
    disabled_at   bigint NOT NULL
);
