-- Version 13: a way back in for a forgotten PIN (issue 23, item 10). An operator
-- issues a one-time code (stored only as its keyed digest), good once within its
-- deadline and for at most 5 guesses; a new code replaces the customer's last.
CREATE TABLE pin_resets (
    customer_id   TEXT PRIMARY KEY,
    code_digest   TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at       INTEGER
) WITHOUT ROWID;
