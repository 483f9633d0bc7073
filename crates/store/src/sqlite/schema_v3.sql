-- Version 3: the EMVCo QR payload of each payment, computed at creation.
ALTER TABLE payments ADD COLUMN qr_payload TEXT NOT NULL DEFAULT '';
