-- Version 11: hardening what is believed from outside (issue 21).
--
-- A bank's signed answer that Pocket refused (about another operation, with another
-- amount, currency or kind, or malformed) is never applied; why it was refused is kept
-- on the operation for the operator's reconciliation.
ALTER TABLE bank_operations ADD COLUMN refused_answer TEXT;

-- A payment code refused by the payer's side (funds, a rule, the daily limit) is
-- counted; after a few refusals the code is spent, so stepping the amount down cannot
-- find a wallet's balance. One row per (device, step) charged, locked by every charge
-- of that code, pruned per device like payment_codes_used.
CREATE TABLE payment_code_refusals (
    device_id   TEXT NOT NULL,
    step        INTEGER NOT NULL,
    refusals    INTEGER NOT NULL,
    PRIMARY KEY (device_id, step)
) WITHOUT ROWID;

-- The session (its token's keyed digest) that registered a device: signing that
-- session out revokes the device in the same transaction. NULL for devices registered
-- before this version.
ALTER TABLE devices ADD COLUMN session_digest TEXT;
CREATE INDEX devices_by_session ON devices (session_digest) WHERE revoked_at IS NULL;
