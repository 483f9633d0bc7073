-- Version 5: bank cards bound to wallets (issue 9). Pocket keeps the connector's
-- token, the brand, the last four digits, the expiry and a keyed fingerprint of the
-- number (to refuse binding one card twice); never the number, never the CVC.
CREATE TABLE cards (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    connector    TEXT NOT NULL,
    token        TEXT NOT NULL,
    brand        TEXT NOT NULL,
    last4        TEXT NOT NULL,
    exp_month    INTEGER NOT NULL,
    exp_year     INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    removed_at   INTEGER
);
CREATE UNIQUE INDEX cards_bound_once ON cards (customer_id, fingerprint) WHERE removed_at IS NULL;
CREATE INDEX cards_by_customer ON cards (customer_id, seq);
