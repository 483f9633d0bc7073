-- Version 6: money in and out through banks (issue 9).

-- Accounts gain the part of their balance reserved by pending (two-phase) transfers,
-- and a kind for the clearing accounts of connectors (money in flight with a bank,
-- which may be negative like the settlement account). A wallet or merchant balance
-- never has less than its reservations: `balance - reserved >= 0`.
CREATE TABLE accounts_v6 (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('wallet', 'merchant', 'settlement', 'clearing')),
    owner     TEXT NOT NULL,
    currency  TEXT NOT NULL,
    balance   INTEGER NOT NULL DEFAULT 0,
    reserved  INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    UNIQUE (kind, owner, currency),
    CHECK (kind IN ('settlement', 'clearing') OR balance - reserved >= 0)
);
INSERT INTO accounts_v6 (id, kind, owner, currency, balance)
    SELECT id, kind, owner, currency, balance FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v6 RENAME TO accounts;

-- Card top-ups, withdrawals and payouts: one row per operation, whose id is also the
-- operation id the connector sees (a retry is the same operation). `reservation` is the
-- two-phase state of the money a withdrawal or payout reserved. An operation without a
-- final answer is looked at again at `next_check_at` (by any node holding the lease).
CREATE TABLE bank_operations (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('topup', 'withdrawal', 'payout')),
    connector        TEXT NOT NULL,
    owner_kind       TEXT NOT NULL CHECK (owner_kind IN ('wallet', 'merchant')),
    owner            TEXT NOT NULL,
    card_id          TEXT REFERENCES cards(id),
    bank_account_id  TEXT,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'failed')),
    reservation      TEXT CHECK (reservation IN ('reserved', 'posted', 'voided')),
    failure_code     TEXT,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    next_check_at    INTEGER,
    checks           INTEGER NOT NULL DEFAULT 0,
    lease_until      INTEGER NOT NULL DEFAULT 0,
    CHECK ((status = 'processing') = (completed_at IS NULL))
);
CREATE INDEX bank_operations_due ON bank_operations (next_check_at) WHERE status = 'processing';
CREATE INDEX bank_operations_by_owner ON bank_operations (owner, kind, seq);
