-- When the stuck-generation sweeper should next look at a charge with no terminal outcome,
-- and the hard deadline after which it is refunded as a system failure. Both are set at
-- charge time from the deadline policy in force; NULL means "the sweeper's defaults".
ALTER TABLE generations ADD COLUMN next_poll_at_ms BIGINT;
ALTER TABLE generations ADD COLUMN deadline_at_ms BIGINT;
