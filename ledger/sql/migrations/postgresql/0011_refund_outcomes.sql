-- A refund is not money back until it succeeds: Stripe refunds can stay `pending` for days
-- and can fail after succeeding (`failed`, reversed by a failure balance transaction:
-- https://docs.stripe.com/refunds#failed-refunds). Each reversal keeps its state; only
-- succeeded ones count. Credits a claw-back took for a refund that then failed are given
-- back by a `restore` entry keyed by that refund.
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries DROP CONSTRAINT entries_amount_sign;
ALTER TABLE entries DROP CONSTRAINT entries_generation_required;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
    CHECK (kind IN ('grant', 'charge', 'refund', 'clawback', 'restore'));
ALTER TABLE entries ADD CONSTRAINT entries_amount_sign
    CHECK ((kind IN ('charge', 'clawback') AND amount < 0)
        OR (kind IN ('grant', 'refund', 'restore') AND amount > 0));
ALTER TABLE entries ADD CONSTRAINT entries_generation_required
    CHECK (kind IN ('grant', 'clawback', 'restore') OR generation_id IS NOT NULL);

ALTER TABLE payment_reversals ADD COLUMN state TEXT NOT NULL DEFAULT 'succeeded'
    CHECK (state IN ('pending', 'succeeded', 'failed'));
CREATE INDEX payment_reversals_pending ON payment_reversals (purchase_key)
    WHERE state = 'pending';
