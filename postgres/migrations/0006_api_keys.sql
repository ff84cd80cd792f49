-- API keys (issue 22): looked up by the id in the key itself; only the
-- SHA-256 of the whole key is kept. Scopes are space-separated. Times are
-- Unix nanoseconds, 0 for none.
CREATE TABLE api_keys (
    id           text   COLLATE "C" PRIMARY KEY,
    name         text   NOT NULL,
    scopes       text   NOT NULL,
    tenant       text   NOT NULL,
    hash         bytea  NOT NULL,
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL,
    last_used_at bigint NOT NULL,
    revoked_at   bigint NOT NULL
);
