-- Version 12: PostgreSQL without a cluster-wide lock (issue 22); see the PostgreSQL
-- schema's version 6.
--
-- The running totals of the book are kept in shards: each writer adds its postings to
-- its own row (SQLite's one writer uses shard 0), and the report sums the shards. Every
-- shard balances on its own (each transfer adds the same amount to debits and
-- credits, and nothing to the sum of balances), so every posting still checks them.
CREATE TABLE ledger_totals_sharded (
    currency         TEXT NOT NULL,
    shard            INTEGER NOT NULL,
    total_debits     TEXT NOT NULL,
    total_credits    TEXT NOT NULL,
    sum_of_balances  TEXT NOT NULL,
    transfers        INTEGER NOT NULL,
    accounts         INTEGER NOT NULL,
    PRIMARY KEY (currency, shard)
) WITHOUT ROWID;
INSERT INTO ledger_totals_sharded
SELECT currency, 0, total_debits, total_credits, sum_of_balances, transfers, accounts
FROM ledger_totals;
DROP TABLE ledger_totals;
ALTER TABLE ledger_totals_sharded RENAME TO ledger_totals;
