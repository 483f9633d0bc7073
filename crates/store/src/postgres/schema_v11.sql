-- v11: how many times a request was sent again; see the SQLite schema's version 15.
ALTER TABLE payments ADD COLUMN reminders BIGINT NOT NULL DEFAULT 0;
