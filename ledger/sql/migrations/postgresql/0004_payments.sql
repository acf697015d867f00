-- Paid credit packs, and claw-backs (negative entries) when a paid pack's money goes back.
ALTER TABLE entries ADD COLUMN purchase_key TEXT;
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries DROP CONSTRAINT entries_check;
ALTER TABLE entries DROP CONSTRAINT entries_check1;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
    CHECK (kind IN ('grant', 'charge', 'refund', 'clawback'));
ALTER TABLE entries ADD CONSTRAINT entries_amount_sign
    CHECK ((kind IN ('charge', 'clawback') AND amount < 0)
        OR (kind IN ('grant', 'refund') AND amount > 0));
ALTER TABLE entries ADD CONSTRAINT entries_generation_required
    CHECK (kind IN ('grant', 'clawback') OR generation_id IS NOT NULL);
CREATE UNIQUE INDEX entries_one_grant_per_purchase ON entries (purchase_key)
    WHERE kind = 'grant' AND purchase_key IS NOT NULL;

CREATE TABLE payments (
    purchase_key    TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    state           TEXT NOT NULL
        CHECK (state IN ('unpaid', 'paid', 'failed', 'granted', 'refunding', 'refunded')),
    account_id      TEXT,
    price_id        TEXT,
    credits         BIGINT,
    amount          BIGINT,
    currency        TEXT,
    customer        TEXT,
    charge_id       TEXT,
    session_id      TEXT,
    paid_at_ms      BIGINT,
    refund_reason   TEXT,
    refund_id       TEXT,
    refunded_amount BIGINT NOT NULL DEFAULT 0,
    clawed_credits  BIGINT NOT NULL DEFAULT 0,
    flag            TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE INDEX payments_charge ON payments (charge_id);
CREATE INDEX payments_unlanded ON payments (paid_at_ms) WHERE state = 'paid';

CREATE TABLE payment_decisions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    purchase_key TEXT NOT NULL,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at_ms        BIGINT NOT NULL
);
CREATE INDEX payment_decisions_purchase ON payment_decisions (purchase_key);
