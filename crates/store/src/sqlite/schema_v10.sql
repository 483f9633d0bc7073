-- Version 10: customer-presented payment codes (issue 13). A code is single use: the
-- transaction that charges it inserts its device and step here, and a second charge of
-- the same code conflicts. Rows older than the accepted window are pruned per device as
-- new ones are written (at most a few per device). The codes themselves are never
-- stored, nor the device's code secret (the server derives it from its own key).
CREATE TABLE payment_codes_used (
    device_id   TEXT NOT NULL,
    step        INTEGER NOT NULL,
    payment_id  TEXT NOT NULL,
    PRIMARY KEY (device_id, step)
) WITHOUT ROWID;
-- The code directory reads the active devices in registration order.
CREATE INDEX devices_active ON devices (seq) WHERE revoked_at IS NULL;
