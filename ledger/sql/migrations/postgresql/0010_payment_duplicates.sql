-- A purchase refunded as the duplicate of another names it: when the later of two identical
-- purchases landed first (events arrive in any order), the earlier one lands and the later
-- one's refund is begun in the same transaction; the earlier one's events carry it on.
ALTER TABLE payments ADD COLUMN duplicate_of TEXT;
CREATE INDEX payments_duplicate_of ON payments (duplicate_of) WHERE duplicate_of IS NOT NULL;
