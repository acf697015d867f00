-- Credits are whole numbers (ledger/credits.py): SQLite would store 497.5 in an INTEGER
-- column, so each amount column gets a CHECK on its storage type, and the per-entry bound
-- MAX_CREDITS = 10^12. SQLite cannot add a CHECK in place: the three tables are rebuilt
-- (foreign keys off meanwhile, checked before commit: SqliteDatabase.schema_change).
CREATE TABLE accounts_v6 (
    account_id    TEXT PRIMARY KEY,
    balance       INTEGER NOT NULL CHECK (typeof(balance) = 'integer'),
    updated_at_ms INTEGER NOT NULL
);
INSERT INTO accounts_v6 (account_id, balance, updated_at_ms)
SELECT account_id, balance, updated_at_ms FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v6 RENAME TO accounts;

CREATE TABLE entries_v6 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key     TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    kind                TEXT NOT NULL CHECK (kind IN ('grant', 'charge', 'refund', 'clawback')),
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
        OR (kind IN ('grant', 'refund') AND amount > 0)),
    CHECK (kind IN ('grant', 'clawback') OR generation_id IS NOT NULL),
    CHECK (kind <> 'refund' OR failure_known_at_ms IS NOT NULL)
);
INSERT INTO entries_v6 (id, idempotency_key, account_id, kind, amount, generation_id, reason,
                        policy_version, created_at_ms, failure_known_at_ms, applied_at_ms,
                        purchase_key)
SELECT id, idempotency_key, account_id, kind, amount, generation_id, reason, policy_version,
       created_at_ms, failure_known_at_ms, applied_at_ms, purchase_key
FROM entries;
DROP TABLE entries;
ALTER TABLE entries_v6 RENAME TO entries;
CREATE UNIQUE INDEX entries_one_charge_per_generation ON entries (generation_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX entries_one_refund_per_generation ON entries (generation_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX entries_one_grant_per_purchase ON entries (purchase_key)
    WHERE kind = 'grant' AND purchase_key IS NOT NULL;
CREATE INDEX entries_account ON entries (account_id);

CREATE TABLE generations_v6 (
    generation_id   TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    provider        TEXT NOT NULL,
    provider_job_id TEXT,
    operation       TEXT NOT NULL,
    credits         INTEGER NOT NULL
        CHECK (typeof(credits) = 'integer' AND credits BETWEEN 1 AND 1000000000000),
    charged_at_ms   INTEGER NOT NULL,
    outcome         TEXT,
    outcome_reason  TEXT,
    outcome_at_ms   INTEGER,
    next_poll_at_ms INTEGER,
    deadline_at_ms  INTEGER
);
INSERT INTO generations_v6 (generation_id, account_id, provider, provider_job_id, operation,
                            credits, charged_at_ms, outcome, outcome_reason, outcome_at_ms,
                            next_poll_at_ms, deadline_at_ms)
SELECT generation_id, account_id, provider, provider_job_id, operation, credits, charged_at_ms,
       outcome, outcome_reason, outcome_at_ms, next_poll_at_ms, deadline_at_ms
FROM generations;
DROP TABLE generations;
ALTER TABLE generations_v6 RENAME TO generations;
CREATE UNIQUE INDEX generations_provider_job ON generations (provider, provider_job_id)
    WHERE provider_job_id IS NOT NULL;
CREATE INDEX generations_unsettled ON generations (charged_at_ms) WHERE outcome IS NULL;
