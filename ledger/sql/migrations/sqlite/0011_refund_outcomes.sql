-- A refund is not money back until it succeeds: Stripe refunds can stay `pending` for days
-- and can fail after succeeding (`failed`, reversed by a failure balance transaction:
-- https://docs.stripe.com/refunds#failed-refunds). Each reversal keeps its state; only
-- succeeded ones count. Credits a claw-back took for a refund that then failed are given
-- back by a `restore` entry keyed by that refund. SQLite cannot change a CHECK constraint
-- in place: the entries table is rebuilt (foreign keys off meanwhile, checked before commit).
CREATE TABLE entries_v11 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key     TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    kind                TEXT NOT NULL
        CHECK (kind IN ('grant', 'charge', 'refund', 'clawback', 'restore')),
    amount              INTEGER NOT NULL
        CHECK (typeof(amount) = 'integer' AND amount BETWEEN -1000000000000 AND 1000000000000),
    generation_id       TEXT,
    reason              TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    failure_known_at_ms INTEGER,
    applied_at_ms       INTEGER NOT NULL,
    purchase_key        TEXT,
    CHECK ((kind IN ('charge', 'clawback') AND amount < 0)
        OR (kind IN ('grant', 'refund', 'restore') AND amount > 0)),
    CHECK (kind IN ('grant', 'clawback', 'restore') OR generation_id IS NOT NULL),
    CHECK (kind <> 'refund' OR failure_known_at_ms IS NOT NULL)
);
INSERT INTO entries_v11 (id, idempotency_key, account_id, kind, amount, generation_id, reason,
                         policy_version, created_at_ms, failure_known_at_ms, applied_at_ms,
                         purchase_key)
SELECT id, idempotency_key, account_id, kind, amount, generation_id, reason, policy_version,
       created_at_ms, failure_known_at_ms, applied_at_ms, purchase_key
FROM entries;
DROP TABLE entries;
ALTER TABLE entries_v11 RENAME TO entries;
CREATE UNIQUE INDEX entries_one_charge_per_generation ON entries (generation_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX entries_one_refund_per_generation ON entries (generation_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX entries_one_grant_per_purchase ON entries (purchase_key)
    WHERE kind = 'grant' AND purchase_key IS NOT NULL;
CREATE INDEX entries_account ON entries (account_id);

ALTER TABLE payment_reversals ADD COLUMN state TEXT NOT NULL DEFAULT 'succeeded'
    CHECK (state IN ('pending', 'succeeded', 'failed'));
CREATE INDEX payment_reversals_pending ON payment_reversals (purchase_key)
    WHERE state = 'pending';
