-- Money that went back for a purchase, one row per cause: a refund (its refund id) or a lost
-- dispute (its dispute id). A claw-back is keyed by its cause, never by a running total, so an
-- event delivered again takes nothing more. Totals recorded before this table existed are
-- kept as one reversal of their own.
CREATE TABLE payment_reversals (
    cause_id     TEXT PRIMARY KEY,
    purchase_key TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('refund', 'dispute', 'earlier')),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    at_ms        INTEGER NOT NULL
);
CREATE INDEX payment_reversals_purchase ON payment_reversals (purchase_key);
INSERT INTO payment_reversals (cause_id, purchase_key, kind, amount, at_ms)
SELECT 'earlier:' || purchase_key, purchase_key, 'earlier', refunded_amount, updated_at_ms
FROM payments WHERE refunded_amount > 0;
