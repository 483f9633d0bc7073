-- Version 9: risk rules and limits (issue 13). Rules are CEL expressions; the version
-- row moves with every change, so each transaction that applies rules knows whether its
-- compiled copy is current. The customer figures the rules and limits read are kept
-- exact by the transactions that confirm payments: per customer, currency and UTC day
-- (spent_today), per customer and minute (payments_last_hour; older minutes are pruned).
CREATE TABLE risk_rules (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    expression  TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('block', 'require_pin', 'require_pin_and_device')),
    created_at  INTEGER NOT NULL
);
CREATE TABLE risk_rules_version (version INTEGER NOT NULL);
INSERT INTO risk_rules_version (version) VALUES (0);
CREATE TABLE customer_days (
    customer_id  TEXT NOT NULL,
    currency     TEXT NOT NULL,
    day          INTEGER NOT NULL,
    spent        INTEGER NOT NULL CHECK (spent >= 0),
    PRIMARY KEY (customer_id, currency, day)
) WITHOUT ROWID;
CREATE TABLE customer_minutes (
    customer_id  TEXT NOT NULL,
    minute       INTEGER NOT NULL,
    payments     INTEGER NOT NULL,
    PRIMARY KEY (customer_id, minute)
) WITHOUT ROWID;
-- The rule that raised a payment's authentication above its tier's.
ALTER TABLE payments ADD COLUMN policy_rule TEXT;
