-- Version 6: no cluster-wide serialisation (issue 22); see the SQLite schema's
-- version 12.
--
-- Running totals in shards: each writer session adds to its own row; the report sums.
ALTER TABLE ledger_totals ADD COLUMN shard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_totals DROP CONSTRAINT ledger_totals_pkey;
ALTER TABLE ledger_totals ADD PRIMARY KEY (currency, shard);

-- Events get their place in the order at commit, not at insert: a batch inserts its
-- events under temporary negative numbers (invisible to everyone else, and only its
-- own are visible to it), and its COMMIT round trip first runs `pocket_seal_events()`,
-- which takes the next numbers from `event_clock` (its one row is locked until the
-- commit is durable) and renumbers them in insertion order. So a reader that saw seq
-- N has seen every event numbered below N: streams and resumes have no gaps, however
-- the commits of several nodes interleave.
ALTER TABLE events ALTER COLUMN seq DROP IDENTITY IF EXISTS;
CREATE SEQUENCE events_pending_seq;
ALTER TABLE events ALTER COLUMN seq SET DEFAULT -nextval('events_pending_seq');
CREATE TABLE event_clock (
    id    INT PRIMARY KEY CHECK (id = 1),
    last  BIGINT NOT NULL
);
INSERT INTO event_clock SELECT 1, COALESCE(MAX(seq), 0) FROM events;

CREATE FUNCTION pocket_seal_events() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    base bigint;
BEGIN
    SELECT count(*) INTO n FROM events WHERE seq < 0;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    UPDATE event_clock SET last = last + n WHERE id = 1 RETURNING last - n INTO base;
    UPDATE events e SET seq = base + o.rn
    FROM (SELECT seq AS old, row_number() OVER (ORDER BY seq DESC) AS rn
          FROM events WHERE seq < 0) o
    WHERE e.seq = o.old;
    RETURN n;
END;
$$;

-- No NOTIFY inside a writing transaction (PostgreSQL holds a database-wide lock from a
-- NOTIFY until the commit is durable): the writer notifies after its commit.
DROP TRIGGER events_notify ON events;
DROP FUNCTION pocket_notify_event();

-- Credits are applied at commit, not when posted: a transfer locks only the account
-- it debits (whose floor the core checks), and is written with
-- `credit_balance_after` NULL (only the writing transaction ever sees it so); the
-- COMMIT's round trip first runs `pocket_apply_credits()`, which adds each credited
-- account's sum in one update, accounts in id order, and fills in the balances after.
-- So a merchant that every payment credits is locked only from there to the end of
-- each commit, not for a whole batch on every writer.
ALTER TABLE transfers ALTER COLUMN credit_balance_after DROP NOT NULL;
CREATE INDEX transfers_credit_pending ON transfers (seq) WHERE credit_balance_after IS NULL;

CREATE FUNCTION pocket_apply_credits() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    after_all bigint;
BEGIN
    FOR r IN SELECT credit_account AS account, sum(amount)::bigint AS total
             FROM transfers WHERE credit_balance_after IS NULL
             GROUP BY credit_account ORDER BY credit_account LOOP
        UPDATE accounts SET balance = balance + r.total WHERE id = r.account
            RETURNING balance INTO after_all;
        UPDATE transfers t SET credit_balance_after = after_all - r.total + p.running
        FROM (SELECT seq, (sum(amount) OVER (ORDER BY seq))::bigint AS running
              FROM transfers
              WHERE credit_balance_after IS NULL AND credit_account = r.account) p
        WHERE t.seq = p.seq;
    END LOOP;
END;
$$;
