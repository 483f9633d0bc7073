-- Version 6: no cluster-wide serialisation (issue 22); see the SQLite schema's
-- version 12.
--
-- Running totals in shards: each writer session adds to its own row; the report sums.
ALTER TABLE ledger_totals ADD COLUMN shard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_totals DROP CONSTRAINT ledger_totals_pkey;
ALTER TABLE ledger_totals ADD PRIMARY KEY (currency, shard);

-- Events get their place in the order after they commit, not at insert: a batch
-- inserts its events under temporary negative numbers, and right after its commit
-- the writer runs `pocket_settle()` (below) in a small transaction of its own, which
-- takes the next numbers from `event_clock` (its one row locked while it runs) and
-- numbers every committed event still negative, in insertion order. Readers read
-- positive seqs only, so one that saw seq N has seen every event numbered below N:
-- streams and resumes have no gaps however the commits of several nodes interleave,
-- and no lock is held across any commit's wait for the disk.
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY IF EXISTS;
CREATE SEQUENCE events_pending_seq;
ALTER TABLE events ALTER COLUMN seq SET DEFAULT -nextval('events_pending_seq');
CREATE TABLE event_clock (
    id    INT PRIMARY KEY CHECK (id = 1),
    last  BIGINT NOT NULL
);
INSERT INTO event_clock SELECT 1, COALESCE(MAX(seq), 0) FROM events;

-- No NOTIFY inside a writing transaction (PostgreSQL holds a database-wide lock from a
-- NOTIFY until the commit is durable): the writer notifies after its commit.
DROP TRIGGER events_notify ON events;
DROP FUNCTION pocket_notify_event();

-- Credits are applied after the commit, not when posted: a transfer locks only the
-- account it debits (whose floor the core checks) and is written with
-- `credit_balance_after` NULL; `pocket_settle()` adds each credited account's
-- committed pending credits in one update, accounts in id order, and fills in the
-- balances after. A merchant that every payment credits is thus locked only for the
-- moment of that small update, never for a batch or across a commit's disk wait. A
-- settlement lost in a crash is done by the next one (the pending rows are still
-- there), so it needs no wait for the disk itself.
ALTER TABLE transfers ALTER COLUMN credit_balance_after DROP NOT NULL;
CREATE INDEX transfers_credit_pending ON transfers (credit_account, seq)
    WHERE credit_balance_after IS NULL;

-- Every statement here reads after the lock before it was granted (READ COMMITTED
-- takes a new snapshot per statement), and works on exactly the rows it read.
CREATE FUNCTION pocket_settle() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    account bigint;
    seqs bigint[];
    total bigint;
    after_all bigint;
    base bigint;
BEGIN
    FOR account IN SELECT DISTINCT credit_account FROM transfers
                   WHERE credit_balance_after IS NULL ORDER BY 1 LOOP
        PERFORM 1 FROM accounts WHERE id = account FOR NO KEY UPDATE;
        SELECT array_agg(seq ORDER BY seq), sum(amount)::bigint INTO seqs, total
        FROM transfers WHERE credit_balance_after IS NULL AND credit_account = account;
        CONTINUE WHEN seqs IS NULL;
        UPDATE accounts SET balance = balance + total WHERE id = account
            RETURNING balance INTO after_all;
        UPDATE transfers t SET credit_balance_after = after_all - total + p.running
        FROM (SELECT seq, (sum(amount) OVER (ORDER BY seq))::bigint AS running
              FROM transfers WHERE seq = ANY (seqs)) p
        WHERE t.seq = p.seq;
    END LOOP;
    PERFORM 1 FROM event_clock WHERE id = 1 FOR NO KEY UPDATE;
    SELECT array_agg(seq ORDER BY seq DESC) INTO seqs FROM events WHERE seq < 0;
    IF seqs IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE event_clock SET last = last + cardinality(seqs) WHERE id = 1
        RETURNING last - cardinality(seqs) INTO base;
    UPDATE events e SET seq = base + o.n
    FROM unnest(seqs) WITH ORDINALITY AS o(old, n)
    WHERE e.seq = o.old;
    PERFORM pg_notify('pocket_events', '');
    RETURN cardinality(seqs);
END;
$$;
