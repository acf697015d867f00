-- Credit kinds, expiry and holds (ledger/lots.py, ledger/holds.py, ledger/expiry.py).
-- Every grant opens a lot of one credit kind with its expiry terms; every entry that moves
-- credits records, per lot, how many it moved (lot_moves, keyed by the entry's idempotency
-- key), so a refund gives back to the very lots its charge took from, and `ledger check`
-- proves each lot's remaining credits from its moves. A hold (charge_mode = "hold")
-- reserves credits on the account and its lots until it is captured or voided.
ALTER TABLE entries DROP CONSTRAINT entries_kind_check;
ALTER TABLE entries DROP CONSTRAINT entries_amount_sign;
ALTER TABLE entries DROP CONSTRAINT entries_generation_required;
ALTER TABLE entries ADD CONSTRAINT entries_kind_check
    CHECK (kind IN ('grant', 'charge', 'refund', 'clawback', 'restore', 'expiry'));
ALTER TABLE entries ADD CONSTRAINT entries_amount_sign
    CHECK ((kind IN ('charge', 'clawback', 'expiry') AND amount < 0)
        OR (kind IN ('grant', 'refund', 'restore') AND amount > 0));
ALTER TABLE entries ADD CONSTRAINT entries_generation_required
    CHECK (kind IN ('grant', 'clawback', 'restore', 'expiry') OR generation_id IS NOT NULL);

ALTER TABLE accounts ADD COLUMN held BIGINT NOT NULL DEFAULT 0
    CHECK (held >= 0);

CREATE TABLE credit_lots (
    lot_id                TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL REFERENCES accounts (account_id),
    credit_kind           TEXT NOT NULL,
    expiry_rule           TEXT NOT NULL
        CHECK (expiry_rule IN ('never', 'cycle_end', 'after_cancellation')),
    expires_at_ms         BIGINT,
    after_cancellation_ms BIGINT,
    subscription_id       TEXT,
    remaining             BIGINT NOT NULL,
    held                  BIGINT NOT NULL DEFAULT 0
        CHECK (held >= 0),
    expiries              BIGINT NOT NULL DEFAULT 0,
    created_at_ms         BIGINT NOT NULL,
    CHECK (expiry_rule <> 'after_cancellation' OR after_cancellation_ms IS NOT NULL)
);
CREATE INDEX credit_lots_account ON credit_lots (account_id);
CREATE INDEX credit_lots_expiring ON credit_lots (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE INDEX credit_lots_subscription ON credit_lots (subscription_id)
    WHERE subscription_id IS NOT NULL;

CREATE TABLE lot_moves (
    entry_key TEXT NOT NULL,
    lot_id    TEXT NOT NULL REFERENCES credit_lots (lot_id),
    amount    BIGINT NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (entry_key, lot_id)
);
CREATE INDEX lot_moves_lot ON lot_moves (lot_id);

CREATE TABLE holds (
    generation_id  TEXT PRIMARY KEY REFERENCES generations (generation_id),
    account_id     TEXT NOT NULL REFERENCES accounts (account_id),
    credits        BIGINT NOT NULL CHECK (credits > 0),
    state          TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    created_at_ms  BIGINT NOT NULL,
    settled_at_ms  BIGINT
);
CREATE INDEX holds_pending ON holds (account_id) WHERE state = 'pending';

CREATE TABLE hold_lots (
    generation_id TEXT NOT NULL REFERENCES holds (generation_id),
    lot_id        TEXT NOT NULL REFERENCES credit_lots (lot_id),
    credits       BIGINT NOT NULL CHECK (credits > 0),
    PRIMARY KEY (generation_id, lot_id)
);

-- Entries written before this migration moved no lot: the audit proves moves from here on.
CREATE TABLE ledger_marks (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
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
