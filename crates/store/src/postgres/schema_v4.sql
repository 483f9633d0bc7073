-- Version 4: customer-presented payment codes (issue 13); see the SQLite schema's
-- version 10.
CREATE TABLE payment_codes_used (
    device_id   TEXT NOT NULL,
    step        BIGINT NOT NULL,
    payment_id  TEXT NOT NULL,
    PRIMARY KEY (device_id, step)
);
CREATE INDEX devices_active ON devices (seq) WHERE revoked_at IS NULL;
