-- Credit kinds, expiry and holds (ledger/lots.py, ledger/holds.py, ledger/expiry.py).
-- Every grant opens a lot of one credit kind with its expiry terms; every entry that moves
-- credits records, per lot, how many it moved (lot_moves, keyed by the entry's idempotency
-- key), so a refund gives back to the very lots its charge took from, and `ledger check`
-- proves each lot's remaining credits from its moves. A hold (charge_mode = "hold")
-- reserves credits on the account and its lots until it is captured or voided.
-- SQLite cannot change a CHECK constraint in place: entries is rebuilt for the `expiry` kind
-- (foreign keys off meanwhile, checked before commit).
CREATE TABLE entries_v17 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key     TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    kind                TEXT NOT NULL
        CHECK (kind IN ('grant', 'charge', 'refund', 'clawback', 'restore', 'expiry')),
    amount              INTEGER NOT NULL
        CHECK (typeof(amount) = 'integer' AND amount BETWEEN -1000000000000 AND 1000000000000),
    generation_id       TEXT,
    reason              TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    failure_known_at_ms INTEGER,
    applied_at_ms       INTEGER NOT NULL,
    purchase_key        TEXT,
    CHECK ((kind IN ('charge', 'clawback', 'expiry') AND amount < 0)
        OR (kind IN ('grant', 'refund', 'restore') AND amount > 0)),
    CHECK (kind IN ('grant', 'clawback', 'restore', 'expiry') OR generation_id IS NOT NULL),
    CHECK (kind <> 'refund' OR failure_known_at_ms IS NOT NULL)
);
INSERT INTO entries_v17 (id, idempotency_key, account_id, kind, amount, generation_id, reason,
                         policy_version, created_at_ms, failure_known_at_ms, applied_at_ms,
                         purchase_key)
SELECT id, idempotency_key, account_id, kind, amount, generation_id, reason, policy_version,
       created_at_ms, failure_known_at_ms, applied_at_ms, purchase_key
FROM entries;
DROP TABLE entries;
ALTER TABLE entries_v17 RENAME TO entries;
CREATE UNIQUE INDEX entries_one_charge_per_generation ON entries (generation_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX entries_one_refund_per_generation ON entries (generation_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX entries_one_grant_per_purchase ON entries (purchase_key)
    WHERE kind = 'grant' AND purchase_key IS NOT NULL;
CREATE INDEX entries_account ON entries (account_id);
-- The table was rebuilt: its outbox trigger (0016) goes with it, so it is created again.
CREATE TRIGGER entries_outbox AFTER INSERT ON entries
BEGIN
    INSERT INTO outbox (entry_id, account_id, seq, next_attempt_at_ms, created_at_ms)
    VALUES (NEW.id, NEW.account_id,
            (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE account_id = NEW.account_id),
            NEW.created_at_ms, NEW.created_at_ms);
END;

ALTER TABLE accounts ADD COLUMN held INTEGER NOT NULL DEFAULT 0
    CHECK (typeof(held) = 'integer' AND held >= 0);

CREATE TABLE credit_lots (
    lot_id                TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts (account_id),
    credit_kind           TEXT NOT NULL,
    expiry_rule           TEXT NOT NULL
        CHECK (expiry_rule IN ('never', 'cycle_end', 'after_cancellation')),
    expires_at_ms         INTEGER,
    after_cancellation_ms INTEGER,
    subscription_id       TEXT,
    remaining             INTEGER NOT NULL CHECK (typeof(remaining) = 'integer'),
    held                  INTEGER NOT NULL DEFAULT 0
        CHECK (typeof(held) = 'integer' AND held >= 0),
    expiries              INTEGER NOT NULL DEFAULT 0,
    created_at_ms         INTEGER NOT NULL,
    CHECK (expiry_rule <> 'after_cancellation' OR after_cancellation_ms IS NOT NULL)
);
CREATE INDEX credit_lots_account ON credit_lots (account_id);
CREATE INDEX credit_lots_expiring ON credit_lots (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE INDEX credit_lots_subscription ON credit_lots (subscription_id)
    WHERE subscription_id IS NOT NULL;

CREATE TABLE lot_moves (
    entry_key TEXT NOT NULL,
    lot_id    TEXT NOT NULL REFERENCES credit_lots (lot_id),
    amount    INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount <> 0),
    PRIMARY KEY (entry_key, lot_id)
);
CREATE INDEX lot_moves_lot ON lot_moves (lot_id);

CREATE TABLE holds (
    generation_id  TEXT PRIMARY KEY REFERENCES generations (generation_id),
    account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    credits        INTEGER NOT NULL CHECK (typeof(credits) = 'integer' AND credits > 0),
    state          TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    created_at_ms  INTEGER NOT NULL,
    settled_at_ms  INTEGER
);
CREATE INDEX holds_pending ON holds (account_id) WHERE state = 'pending';

CREATE TABLE hold_lots (
    generation_id TEXT NOT NULL REFERENCES holds (generation_id),
    lot_id        TEXT NOT NULL REFERENCES credit_lots (lot_id),
    credits       INTEGER NOT NULL CHECK (typeof(credits) = 'integer' AND credits > 0),
    PRIMARY KEY (generation_id, lot_id)
);

-- Entries written before this migration moved no lot: the audit proves moves from here on.
CREATE TABLE ledger_marks (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO ledger_marks (name, value)
SELECT 'lots_from_entry_id', COALESCE(MAX(id), 0) FROM entries;

-- Each balance held so far becomes one opening lot that never expires: `pack` for an
-- account that bought packs, `promo` for one credited by grants only.
INSERT INTO credit_lots (lot_id, account_id, credit_kind, expiry_rule, remaining, created_at_ms)
SELECT 'opening:' || a.account_id, a.account_id,
       CASE WHEN EXISTS (SELECT 1 FROM entries e WHERE e.account_id = a.account_id
                         AND e.kind = 'grant' AND e.purchase_key IS NOT NULL)
            THEN 'pack' ELSE 'promo' END,
       'never', a.balance, a.updated_at_ms
FROM accounts a;
INSERT INTO lot_moves (entry_key, lot_id, amount)
SELECT 'opening:' || account_id, 'opening:' || account_id, balance FROM accounts
WHERE balance <> 0;
