-- A dead letter whose event was applied after all (a transient failure that outlasted the
-- retries, then the inbox sweep applied it) is marked resolved in the same transaction as the
-- event's effect, and no longer listed; it is kept for the record.
ALTER TABLE dead_letters ADD COLUMN resolved_at_ms INTEGER;
