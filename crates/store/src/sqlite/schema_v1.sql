-- Pocket schema, version 1. Portable SQL: integers are 64-bit, instants are epoch
-- milliseconds, JSON is text. A PostgreSQL schema mirrors this one (BIGSERIAL for the
-- INTEGER PRIMARY KEY sequences).

CREATE TABLE merchants (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Merchant secret keys, by digest. `expires_at` lets a rolled key live on briefly.
CREATE TABLE api_keys (
    key_digest  TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);

CREATE TABLE customers (
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    phone             TEXT NOT NULL UNIQUE,
    name              TEXT NOT NULL,
    pin_hash          TEXT NOT NULL,
    pin_failures      INTEGER NOT NULL DEFAULT 0,
    pin_locked_until  INTEGER,
    created_at        INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_digest  TEXT PRIMARY KEY,
    customer_id   TEXT NOT NULL REFERENCES customers(id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);

CREATE TABLE products (
    seq          INTEGER PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    sku          TEXT NOT NULL,
    name         TEXT NOT NULL,
    unit_amount  INTEGER NOT NULL CHECK (unit_amount > 0),
    currency     TEXT NOT NULL,
    active       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (merchant_id, sku)
);

CREATE TABLE payments (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    merchant_name    TEXT NOT NULL,
    customer_id      TEXT REFERENCES customers(id),
    status           TEXT NOT NULL,
    amount           INTEGER NOT NULL CHECK (amount > 0),
    currency         TEXT NOT NULL,
    items            TEXT NOT NULL,
    description      TEXT,
    metadata         TEXT NOT NULL,
    tier             TEXT NOT NULL,
    window_seconds   INTEGER NOT NULL,
    authentication   TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    amount_refunded  INTEGER NOT NULL DEFAULT 0,
    failure_code     TEXT,
    CHECK (amount_refunded >= 0 AND amount_refunded <= amount)
);
CREATE INDEX payments_by_merchant ON payments (merchant_id, seq);
CREATE INDEX payments_by_customer ON payments (customer_id, seq);
-- The sweeper's only index: the earliest pending deadline is one index probe away.
CREATE INDEX payments_pending_by_deadline ON payments (expires_at) WHERE status = 'pending';

CREATE TABLE refunds (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    payment_id   TEXT NOT NULL REFERENCES payments(id),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    reason       TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE topups (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    currency     TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Ledger accounts. Only the settlement account may go below zero.
CREATE TABLE accounts (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('wallet', 'merchant', 'settlement')),
    owner     TEXT NOT NULL,
    currency  TEXT NOT NULL,
    balance   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, owner, currency),
    CHECK (kind = 'settlement' OR balance >= 0)
);

-- Immutable double-entry transfers.
CREATE TABLE transfers (
    seq                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    debit_account         INTEGER NOT NULL REFERENCES accounts(id),
    credit_account        INTEGER NOT NULL REFERENCES accounts(id),
    amount                INTEGER NOT NULL CHECK (amount > 0),
    currency              TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    reference             TEXT NOT NULL,
    debit_balance_after   INTEGER NOT NULL,
    credit_balance_after  INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_by_debit ON transfers (debit_account, seq);
CREATE INDEX transfers_by_credit ON transfers (credit_account, seq);
CREATE INDEX transfers_by_reference ON transfers (reference);

-- Every state change's event, written in the change's transaction (the outbox).
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    merchant_id  TEXT NOT NULL,
    customer_id  TEXT,
    payment_id   TEXT,
    data         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX events_by_merchant ON events (merchant_id, seq);
CREATE INDEX events_by_customer ON events (customer_id, seq);

CREATE TABLE idempotency_keys (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
