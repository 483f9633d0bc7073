-- Version 15: a request sent to the customer's wallet again (issue 23): how many times,
-- counted by the conditional update that sends it, so no more than the most go out.
ALTER TABLE payments ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
