-- Token portal (auth-o-tron `portal` module). `id_hash` is SHA-256 of the session id (or of an
-- OpenID Connect `state`), never the id. Times are Unix seconds; roles and attributes JSON text.
CREATE TABLE aot_portal_sessions (
    id_hash          BYTEA   NOT NULL PRIMARY KEY,
    username         TEXT    NOT NULL,
    realm            TEXT    NOT NULL,
    roles            TEXT    NOT NULL,
    attributes       TEXT    NOT NULL,
    token_roles      TEXT    NOT NULL,
    token_attributes TEXT    NOT NULL,
    csrf             TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    idle_until       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX aot_portal_sessions_idle ON aot_portal_sessions (idle_until);
CREATE TABLE aot_portal_logins (
    id_hash    BYTEA   NOT NULL PRIMARY KEY,
    data       TEXT    NOT NULL,
    expires_at BIGINT NOT NULL
);
