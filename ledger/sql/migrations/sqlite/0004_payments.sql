-- Paid credit packs, and claw-backs (negative entries) when a paid pack's money goes back.
-- SQLite cannot change a CHECK constraint in place: the entries table is rebuilt.
CREATE TABLE entries_v4 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key     TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    kind                TEXT NOT NULL CHECK (kind IN ('grant', 'charge', 'refund', 'clawback')),
    amount              INTEGER NOT NULL,
    generation_id       TEXT,
    reason              TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    failure_known_at_ms INTEGER,
    applied_at_ms       INTEGER NOT NULL,
    purchase_key        TEXT,
    CHECK ((kind IN ('charge', 'clawback') AND amount < 0)
        OR (kind IN ('grant', 'refund') AND amount > 0)),
    CHECK (kind IN ('grant', 'clawback') OR generation_id IS NOT NULL),
    CHECK (kind <> 'refund' OR failure_known_at_ms IS NOT NULL)
);
INSERT INTO entries_v4 (id, idempotency_key, account_id, kind, amount, generation_id, reason,
                        policy_version, created_at_ms, failure_known_at_ms, applied_at_ms)
SELECT id, idempotency_key, account_id, kind, amount, generation_id, reason, policy_version,
       created_at_ms, failure_known_at_ms, applied_at_ms
FROM entries;
DROP TABLE entries;
ALTER TABLE entries_v4 RENAME TO entries;
CREATE UNIQUE INDEX entries_one_charge_per_generation ON entries (generation_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX entries_one_refund_per_generation ON entries (generation_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX entries_one_grant_per_purchase ON entries (purchase_key)
    WHERE kind = 'grant' AND purchase_key IS NOT NULL;
CREATE INDEX entries_account ON entries (account_id);

CREATE TABLE payments (
    purchase_key    TEXT PRIMARY KEY,
    provider        TEXT NOT NULL,
    state           TEXT NOT NULL
        CHECK (state IN ('unpaid', 'paid', 'failed', 'granted', 'refunding', 'refunded')),
    account_id      TEXT,
    price_id        TEXT,
    credits         INTEGER,
    amount          INTEGER,
    currency        TEXT,
    customer        TEXT,
    charge_id       TEXT,
    session_id      TEXT,
    paid_at_ms      INTEGER,
    refund_reason   TEXT,
    refund_id       TEXT,
    refunded_amount INTEGER NOT NULL DEFAULT 0,
    clawed_credits  INTEGER NOT NULL DEFAULT 0,
    flag            TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE INDEX payments_charge ON payments (charge_id);
CREATE INDEX payments_unlanded ON payments (paid_at_ms) WHERE state = 'paid';

-- Every decision taken about a payment (grant, refund, claw-back, duplicate, alert).
CREATE TABLE payment_decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    purchase_key TEXT NOT NULL,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at_ms        INTEGER NOT NULL
);
CREATE INDEX payment_decisions_purchase ON payment_decisions (purchase_key);
