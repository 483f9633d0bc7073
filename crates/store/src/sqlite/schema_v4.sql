-- Version 4: PIN lockout guards (pocket_core::lockout), and idempotency fingerprints
-- that no longer hold unkeyed digests of request bodies.

-- One guard per subject: `signin:<keyed digest of the phone>` (known and unknown
-- numbers alike) and `holder:<customer id>` (confirms and device keys by the signed-in
-- holder). A guard back to its empty state is deleted.
CREATE TABLE pin_guards (
    subject           TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL CHECK (failures >= 0),
    pending           INTEGER NOT NULL CHECK (pending >= 0),
    pending_until     INTEGER NOT NULL,
    last_failure_at   INTEGER NOT NULL,
    locked_until      INTEGER,
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX pin_guards_by_age ON pin_guards (updated_at);

-- The per-customer counter is replaced by the guards.
ALTER TABLE customers DROP COLUMN pin_failures;
ALTER TABLE customers DROP COLUMN pin_locked_until;

-- Fingerprints were plain SHA-256 of the request body: for a body with a PIN, a
-- stolen database turned them into the PIN in a million guesses. They are now keyed
-- (HMAC under the server key). Records written before this version keep their
-- responses (so a retry still replays instead of acting twice) but lose the digest;
-- `legacy` matches any request under the same key until the record ages out (24 h).
UPDATE idempotency_keys SET fingerprint = 'legacy';

-- Running totals of the book per currency, updated by every transfer in its own
-- transaction and checked there (debits = credits, balances sum to zero), so the
-- ledger report needs no scan. Sums are decimal text: they may outgrow 64 bits.
CREATE TABLE ledger_totals (
    currency         TEXT PRIMARY KEY,
    total_debits     TEXT NOT NULL,
    total_credits    TEXT NOT NULL,
    sum_of_balances  TEXT NOT NULL,
    transfers        INTEGER NOT NULL,
    accounts         INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO ledger_totals (currency, total_debits, total_credits, sum_of_balances, transfers, accounts)
SELECT a.currency,
       CAST(COALESCE(t.amount, 0) AS TEXT), CAST(COALESCE(t.amount, 0) AS TEXT),
       CAST(a.balance AS TEXT), COALESCE(t.n, 0), a.n
FROM (SELECT currency, SUM(balance) AS balance, COUNT(*) AS n FROM accounts GROUP BY currency) a
LEFT JOIN (SELECT currency, SUM(amount) AS amount, COUNT(*) AS n FROM transfers GROUP BY currency) t
       ON t.currency = a.currency;

-- A stream opened with a ticket lives as long as the session that took the ticket
-- (tickets from before this version name none: their streams end at the next look).
ALTER TABLE stream_tickets ADD COLUMN session_digest TEXT NOT NULL DEFAULT '';
