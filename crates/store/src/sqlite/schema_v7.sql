-- Version 7: merchants' bank accounts, where payouts go (issue 9). The account number
-- is kept to pay out to it; the API shows only its last four digits.
CREATE TABLE bank_accounts (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    merchant_id     TEXT NOT NULL REFERENCES merchants(id),
    connector       TEXT NOT NULL,
    holder_name     TEXT NOT NULL,
    account_number  TEXT NOT NULL,
    bank_code       TEXT NOT NULL,
    currency        TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX bank_accounts_by_merchant ON bank_accounts (merchant_id, seq);
