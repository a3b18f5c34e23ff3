-- openid-offline refresh-token chains (auth-o-tron `provider::chain`). `chain` is SHA-256 over
-- the provider's name, its token endpoint and the client's original refresh token; a row exists
-- only during a claim or once the IdP rotated the token. `sealed` is the latest token of the
-- chain, encrypted under a key derived from the original (never the token in clear), NULL
-- while it is the original. `generation` advances with every claim (compare-and-swap);
-- `claimed_until` is a claimant's lease in Unix seconds by the database's clock; `updated_at`
-- lets idle chains be pruned. Version 0002 is another table's.
CREATE TABLE aot_refresh_chains (
    chain         BYTEA   NOT NULL PRIMARY KEY,
    generation    BIGINT  NOT NULL,
    sealed        BYTEA,
    claimed_until BIGINT,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX aot_refresh_chains_idle ON aot_refresh_chains (updated_at);
