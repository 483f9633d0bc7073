-- v9: a way back in for a forgotten PIN; see the SQLite schema's version 13.
CREATE TABLE pin_resets (
    customer_id   TEXT PRIMARY KEY,
    code_digest   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at       BIGINT
);
