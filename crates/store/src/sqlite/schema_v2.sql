-- Version 2: webhook endpoints and their delivery outbox, wallet stream tickets,
-- device keys, key prefixes for display and key rolling.

CREATE TABLE webhook_endpoints (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    url          TEXT NOT NULL,
    -- '*' for every event type, else ',type1,type2,' (matched with LIKE).
    events       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX webhook_endpoints_by_merchant ON webhook_endpoints (merchant_id, seq);

-- One row per (event, endpoint): the delivery job. Written with the event.
CREATE TABLE deliveries (
    seq              INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events(id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    seq           INTEGER PRIMARY KEY,
    delivery_seq  INTEGER NOT NULL REFERENCES deliveries(seq),
    event_id      TEXT NOT NULL,
    endpoint_id   TEXT NOT NULL,
    attempted_at  INTEGER NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_by_event ON delivery_attempts (event_id, seq);

-- Single-use tickets for browsers' EventSource (which cannot send headers).
CREATE TABLE stream_tickets (
    ticket_digest  TEXT PRIMARY KEY,
    customer_id    TEXT NOT NULL REFERENCES customers(id),
    expires_at     INTEGER NOT NULL
);

-- Device keys (ECDSA P-256, JWK) that sign confirmations of large payments.
CREATE TABLE devices (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    name         TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX devices_by_customer ON devices (customer_id, seq);

-- Short prefixes of secrets, for display ("sk_AbCd…"); the secrets themselves are
-- only ever stored as keyed digests.
ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id);
