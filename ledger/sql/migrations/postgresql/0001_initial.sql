-- The credit ledger: append-only entries plus one balance row per account.
-- Times are epoch milliseconds (UTC).
CREATE TABLE accounts (
    account_id    TEXT PRIMARY KEY,
    balance       BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE entries (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key     TEXT NOT NULL UNIQUE,
    account_id          TEXT NOT NULL REFERENCES accounts (account_id),
    kind                TEXT NOT NULL CHECK (kind IN ('grant', 'charge', 'refund')),
    amount              BIGINT NOT NULL,
    generation_id       TEXT,
    reason              TEXT NOT NULL,
    policy_version      TEXT NOT NULL,
    created_at_ms       BIGINT NOT NULL,
    failure_known_at_ms BIGINT,
    applied_at_ms       BIGINT NOT NULL,
    CHECK ((kind = 'charge' AND amount < 0) OR (kind <> 'charge' AND amount > 0)),
    CHECK (kind = 'grant' OR generation_id IS NOT NULL),
    CHECK (kind <> 'refund' OR failure_known_at_ms IS NOT NULL)
);
CREATE UNIQUE INDEX entries_one_charge_per_generation ON entries (generation_id) WHERE kind = 'charge';
CREATE UNIQUE INDEX entries_one_refund_per_generation ON entries (generation_id) WHERE kind = 'refund';
CREATE INDEX entries_account ON entries (account_id);

CREATE TABLE generations (
    generation_id   TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (account_id),
    provider        TEXT NOT NULL,
    provider_job_id TEXT,
    operation       TEXT NOT NULL,
    credits         BIGINT NOT NULL CHECK (credits > 0),
    charged_at_ms   BIGINT NOT NULL,
    outcome         TEXT,
    outcome_reason  TEXT,
    outcome_at_ms   BIGINT
);
CREATE UNIQUE INDEX generations_provider_job ON generations (provider, provider_job_id)
    WHERE provider_job_id IS NOT NULL;
CREATE INDEX generations_unsettled ON generations (charged_at_ms) WHERE outcome IS NULL;

-- Every distinct terminal outcome reported for a generation: the first one is applied, a
-- later contradicting one is kept here as a conflict and never applied.
CREATE TABLE outcome_reports (
    generation_id  TEXT NOT NULL REFERENCES generations (generation_id),
    outcome        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    disposition    TEXT NOT NULL CHECK (disposition IN ('applied', 'conflict')),
    message_id     TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (generation_id, outcome)
);

CREATE TABLE dead_letters (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    TEXT NOT NULL UNIQUE,
    actor         TEXT NOT NULL,
    queue         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    error_class   TEXT NOT NULL,
    message       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
