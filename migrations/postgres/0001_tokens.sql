-- API tokens (auth-o-tron `token` module). Times are Unix seconds; scopes, roles and
-- attributes are JSON text. `hash` is SHA-256 of the whole token, never the token.
CREATE TABLE aot_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    hash         BYTEA   NOT NULL UNIQUE,
    username     TEXT    NOT NULL,
    realm        TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    roles        TEXT    NOT NULL,
    attributes   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    rotated_from TEXT,
    hint         TEXT    NOT NULL,
    create_nonce TEXT    UNIQUE
);
CREATE INDEX aot_tokens_owner ON aot_tokens (realm, username, created_at);
CREATE INDEX aot_tokens_expiry ON aot_tokens (expires_at);
