-- v8: a settlement numbers the events its batches wrote, not every negative seq.
-- `events.seq` is the primary key, so each numbering leaves the old (negative)
-- entry dead in the index until a vacuum: `WHERE seq < 0` visited every event
-- numbered since the last one, ~9 ms a settlement after a few thousand payments.
-- The writer now learns each event's pending seq from its insert and hands the
-- batch's to the settlement; `pocket_settle()` without them (every negative seq)
-- stays, for what a lost settlement left (a crash between a commit and it), and
-- runs now and then.
--
-- Each function plans its statements for index access only: PL/pgSQL keeps a
-- session's plans, and plans made while the tables were small (a new database) hash
-- the whole of `events` and `transfers` to join a few rows, a cost that grows with
-- every payment (measured: two thirds of a settlement's time after 8 s of load).
CREATE FUNCTION pocket_settle_credits() RETURNS void LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    account bigint;
    seqs bigint[];
    total bigint;
    after_all bigint;
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
END;
$$;

-- Numbers the given pending events that are still pending (committed, not numbered
-- by another settlement), in insertion order (pending seqs fall as they are drawn).
CREATE FUNCTION pocket_number_events(pending bigint[]) RETURNS bigint LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    seqs bigint[];
    base bigint;
BEGIN
    PERFORM 1 FROM event_clock WHERE id = 1 FOR NO KEY UPDATE;
    SELECT array_agg(e.seq ORDER BY e.seq DESC) INTO seqs
    FROM events e WHERE e.seq = ANY (pending) AND e.seq < 0;
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

CREATE FUNCTION pocket_settle(pending bigint[]) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pocket_settle_credits();
    RETURN pocket_number_events(pending);
END;
$$;

CREATE OR REPLACE FUNCTION pocket_settle() RETURNS bigint LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    pending bigint[];
BEGIN
    PERFORM pocket_settle_credits();
    -- Every negative seq, read under the clock's lock (as the numbering reads again).
    PERFORM 1 FROM event_clock WHERE id = 1 FOR NO KEY UPDATE;
    SELECT array_agg(seq) INTO pending FROM events WHERE seq < 0;
    IF pending IS NULL THEN
        RETURN 0;
    END IF;
    RETURN pocket_number_events(pending);
END;
$$;
