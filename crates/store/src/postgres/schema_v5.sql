-- Version 5: hardening what is believed from outside (issue 21); see the SQLite
-- schema's version 11.
ALTER TABLE bank_operations ADD COLUMN refused_answer TEXT;

CREATE TABLE payment_code_refusals (
    device_id   TEXT NOT NULL,
    step        BIGINT NOT NULL,
    refusals    BIGINT NOT NULL,
    PRIMARY KEY (device_id, step)
);

ALTER TABLE devices ADD COLUMN session_digest TEXT;
CREATE INDEX devices_by_session ON devices (session_digest) WHERE revoked_at IS NULL;
