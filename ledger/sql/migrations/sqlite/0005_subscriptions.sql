-- Subscriptions: each confirmed cancellation, and each subscription invoice paid, so that a
-- charge made after its subscription was cancelled is refunded once, in any event order.
CREATE TABLE subscription_cancellations (
    subscription_id TEXT PRIMARY KEY,
    customer        TEXT NOT NULL,
    cancelled_at_ms INTEGER NOT NULL,
    recorded_at_ms  INTEGER NOT NULL
);

-- Keyed by the invoice: since API version 2025-03-31.basil its webhook events no longer name
-- the PaymentIntent, which is then found through the API when a refund needs it.
CREATE TABLE subscription_charges (
    invoice_id      TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    customer        TEXT NOT NULL,
    payment_intent  TEXT,
    amount          INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    paid_at_ms      INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'kept'
        CHECK (state IN ('kept', 'refunding', 'refunded')),
    refund_id       TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE INDEX subscription_charges_subscription
    ON subscription_charges (subscription_id, paid_at_ms);
CREATE INDEX subscription_charges_payment_intent ON subscription_charges (payment_intent);
