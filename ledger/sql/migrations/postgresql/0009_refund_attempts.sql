-- Our refund of a purchase may need more than one provider call: when a call under the
-- current idempotency key failed (a 5xx, which Stripe may keep under that key and replay to
-- every retry), the next call, made only after the provider's list of the payment's refunds
-- shows none of ours, uses the next deterministic key. The attempt number names that key.
ALTER TABLE payments ADD COLUMN refund_attempt INTEGER NOT NULL DEFAULT 0;
