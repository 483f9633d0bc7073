-- Version 2: holds and capture (issue 13); see the SQLite schema's version 8.
ALTER TABLE payments ADD COLUMN capture TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE payments ADD COLUMN capture_within BIGINT;
ALTER TABLE payments ADD COLUMN authorized_at BIGINT;
ALTER TABLE payments ADD COLUMN capture_before BIGINT;
ALTER TABLE payments ADD COLUMN amount_captured BIGINT CHECK (amount_captured > 0);
CREATE INDEX payments_authorized_by_deadline ON payments (capture_before) WHERE status = 'authorized';
