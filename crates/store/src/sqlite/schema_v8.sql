-- Version 8: holds and capture (issue 13). A payment created with capture 'manual' is
-- 'authorized' once confirmed: its amount reserved in the wallet until captured,
-- canceled, or released by the sweeper at capture_before.
ALTER TABLE payments ADD COLUMN capture TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE payments ADD COLUMN capture_within INTEGER;
ALTER TABLE payments ADD COLUMN authorized_at INTEGER;
ALTER TABLE payments ADD COLUMN capture_before INTEGER;
-- NULL until a hold is captured; an automatic payment's captured amount is its amount.
ALTER TABLE payments ADD COLUMN amount_captured INTEGER CHECK (amount_captured > 0);
-- The sweeper's second index: the earliest hold to release is one probe away.
CREATE INDEX payments_authorized_by_deadline ON payments (capture_before) WHERE status = 'authorized';
