-- Version 14: restricted keys and staff (issue 23). A key row without `scopes` is a
-- secret key (everything); with them, a restricted key (`rk_…`, its `id` and `name`
-- for listing and revoking) or a staff session (`sst_…`, its member in `staff_id`).
ALTER TABLE api_keys ADD COLUMN id TEXT;
ALTER TABLE api_keys ADD COLUMN name TEXT;
ALTER TABLE api_keys ADD COLUMN scopes TEXT;
ALTER TABLE api_keys ADD COLUMN staff_id TEXT;
-- The member of the staff who made a restricted key: it ends when they leave.
ALTER TABLE api_keys ADD COLUMN made_by_staff TEXT;
CREATE UNIQUE INDEX api_keys_by_id ON api_keys (id) WHERE id IS NOT NULL;
CREATE INDEX api_keys_by_staff ON api_keys (staff_id) WHERE staff_id IS NOT NULL;
CREATE TABLE staff (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    role         TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'cashier', 'developer')),
    created_at   INTEGER NOT NULL,
    UNIQUE (merchant_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX staff_by_customer ON staff (customer_id);
