-- Device Bound Session Credentials: the browser key a session is bound
-- to (its RFC 7638 thumbprint and public JWK) and the hash and expiry
-- (Unix nanoseconds) of the current short-lived bound cookie. A session
-- binds once; the row goes with the session when it is purged.
CREATE TABLE device_bindings (
    session_id        text   COLLATE "C" PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    thumbprint        text   NOT NULL,
    jwk               text   NOT NULL,
    bound_at          bigint NOT NULL,
    cookie_hash       bytea  NOT NULL,
    cookie_expires_at bigint NOT NULL,
    -- the cookie the last refresh replaced, still working until it expires
    prev_cookie_hash       bytea  NOT NULL DEFAULT '',
    prev_cookie_expires_at bigint NOT NULL DEFAULT 0
);
