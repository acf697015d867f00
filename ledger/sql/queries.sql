-- Named queries shared by both backends. Parameters are :name placeholders, never formatting.

-- name: upsert_account_credit
INSERT INTO accounts (account_id, balance, updated_at_ms)
VALUES (:account_id, :amount, :now_ms)
ON CONFLICT (account_id) DO UPDATE
    SET balance = accounts.balance + excluded.balance, updated_at_ms = excluded.updated_at_ms
RETURNING balance;

-- name: debit_account_if_covered
UPDATE accounts SET balance = balance - :amount, updated_at_ms = :now_ms
WHERE account_id = :account_id AND balance >= :amount
RETURNING balance;

-- name: account_balance
SELECT balance FROM accounts WHERE account_id = :account_id;

-- name: insert_entry
INSERT INTO entries (idempotency_key, account_id, kind, amount, generation_id, reason,
                     policy_version, created_at_ms, failure_known_at_ms, applied_at_ms)
VALUES (:idempotency_key, :account_id, :kind, :amount, :generation_id, :reason,
        :policy_version, :now_ms, :failure_known_at_ms, :now_ms)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id;

-- name: entry_by_key
SELECT * FROM entries WHERE idempotency_key = :idempotency_key;

-- name: insert_generation
INSERT INTO generations (generation_id, account_id, provider, provider_job_id, operation,
                         credits, charged_at_ms)
VALUES (:generation_id, :account_id, :provider, :provider_job_id, :operation, :credits, :now_ms)
ON CONFLICT (generation_id) DO NOTHING
RETURNING generation_id;

-- name: generation_by_id
SELECT * FROM generations WHERE generation_id = :generation_id;

-- name: generation_by_provider_job
SELECT * FROM generations WHERE provider = :provider AND provider_job_id = :provider_job_id;

-- name: set_generation_outcome
UPDATE generations SET outcome = :outcome, outcome_reason = :reason, outcome_at_ms = :now_ms
WHERE generation_id = :generation_id AND outcome IS NULL;

-- name: insert_outcome_report
INSERT INTO outcome_reports (generation_id, outcome, reason, disposition, message_id, received_at_ms)
VALUES (:generation_id, :outcome, :reason, :disposition, :message_id, :now_ms)
ON CONFLICT (generation_id, outcome) DO NOTHING;

-- name: outcome_reports_for
SELECT * FROM outcome_reports WHERE generation_id = :generation_id ORDER BY received_at_ms;

-- name: upsert_dead_letter
INSERT INTO dead_letters (message_id, actor, queue, reason, error_class, message, created_at_ms)
VALUES (:message_id, :actor, :queue, :reason, :error_class, :message, :now_ms)
ON CONFLICT (message_id) DO UPDATE
    SET reason = excluded.reason, error_class = excluded.error_class,
        message = excluded.message, created_at_ms = excluded.created_at_ms;

-- name: dead_letters
SELECT * FROM dead_letters ORDER BY id;

-- name: count_dead_letters
SELECT count(*) AS n FROM dead_letters;

-- name: refund_latencies_since
SELECT applied_at_ms - failure_known_at_ms AS latency_ms
FROM entries WHERE kind = 'refund' AND applied_at_ms >= :since_ms
ORDER BY latency_ms;

-- name: audit_duplicate_refunds
SELECT generation_id, count(*) AS n FROM entries WHERE kind = 'refund'
GROUP BY generation_id HAVING count(*) > 1;

-- name: audit_refund_not_matching_charge
SELECT r.generation_id, r.amount AS refunded, c.amount AS charged, r.account_id AS refund_account,
       c.account_id AS charge_account
FROM entries r JOIN entries c ON c.generation_id = r.generation_id AND c.kind = 'charge'
WHERE r.kind = 'refund' AND (r.amount <> -c.amount OR r.account_id <> c.account_id);

-- name: audit_refund_without_charge
SELECT r.generation_id, r.amount FROM entries r
WHERE r.kind = 'refund' AND NOT EXISTS (
    SELECT 1 FROM entries c WHERE c.kind = 'charge' AND c.generation_id = r.generation_id);

-- name: audit_succeeded_refunded
SELECT g.generation_id FROM generations g JOIN entries r
    ON r.generation_id = g.generation_id AND r.kind = 'refund'
WHERE g.outcome = 'succeeded';

-- name: audit_generation_without_charge
SELECT g.generation_id FROM generations g WHERE NOT EXISTS (
    SELECT 1 FROM entries c WHERE c.kind = 'charge' AND c.generation_id = g.generation_id);

-- name: audit_balance_mismatch
SELECT a.account_id, a.balance, COALESCE(s.total, 0) AS entries_total
FROM accounts a LEFT JOIN (
    SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) s
    ON s.account_id = a.account_id
WHERE a.balance <> COALESCE(s.total, 0);

-- name: applied_migrations
SELECT version FROM schema_migrations;

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (:version, :name, :now_ms);

-- name: ensure_account
INSERT INTO accounts (account_id, balance, updated_at_ms) VALUES (:account_id, 0, :now_ms)
ON CONFLICT (account_id) DO NOTHING;

-- name: insert_inbox
INSERT INTO inbox (id, kind, provider, generation_id, operation, payload, received_at_ms,
                   enqueued_at_ms)
VALUES (:id, :kind, :provider, :generation_id, :operation, :payload, :now_ms, :now_ms)
ON CONFLICT (id) DO NOTHING;

-- name: inbox_by_id
SELECT * FROM inbox WHERE id = :id;

-- name: settle_inbox
UPDATE inbox SET state = :state, settled_at_ms = :now_ms, dead_reason = :dead_reason
WHERE id = :id AND state = 'pending';

-- name: claim_stale_inbox
UPDATE inbox SET enqueued_at_ms = :now_ms, enqueue_count = enqueue_count + 1
WHERE id IN (
    SELECT id FROM inbox WHERE state = 'pending' AND enqueued_at_ms < :stale_before_ms
    ORDER BY enqueued_at_ms LIMIT :limit)
RETURNING id, kind, enqueue_count, received_at_ms;

-- name: inbox_counts
SELECT state, count(*) AS n, min(received_at_ms) AS oldest_ms FROM inbox GROUP BY state;

-- name: claim_stale_inbox@postgresql
UPDATE inbox SET enqueued_at_ms = :now_ms, enqueue_count = enqueue_count + 1
WHERE id IN (
    SELECT id FROM inbox WHERE state = 'pending' AND enqueued_at_ms < :stale_before_ms
    ORDER BY enqueued_at_ms LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING id, kind, enqueue_count, received_at_ms;

-- name: lock_generation
SELECT * FROM generations WHERE generation_id = :generation_id;

-- name: lock_generation@postgresql
SELECT * FROM generations WHERE generation_id = :generation_id FOR UPDATE;

-- name: refunds_in_window
SELECT generation_id, failure_known_at_ms, applied_at_ms
FROM entries WHERE kind = 'refund' AND applied_at_ms >= :since_ms
ORDER BY applied_at_ms;

-- name: overdue_inbox
SELECT id, kind, provider, generation_id, received_at_ms FROM inbox
WHERE state = 'pending' AND received_at_ms < :received_before_ms
ORDER BY received_at_ms LIMIT :limit;

-- name: set_generation_deadlines
UPDATE generations SET next_poll_at_ms = :next_poll_at_ms, deadline_at_ms = :deadline_at_ms
WHERE generation_id = :generation_id AND next_poll_at_ms IS NULL;

-- name: claim_due_generations
UPDATE generations SET next_poll_at_ms = :now_ms + :lease_ms
WHERE generation_id IN (
    SELECT generation_id FROM generations
    WHERE outcome IS NULL
      AND COALESCE(next_poll_at_ms, charged_at_ms + :default_poll_after_ms) <= :now_ms
    ORDER BY charged_at_ms LIMIT :limit)
RETURNING *;

-- name: claim_due_generations@postgresql
UPDATE generations SET next_poll_at_ms = :now_ms + :lease_ms
WHERE generation_id IN (
    SELECT generation_id FROM generations
    WHERE outcome IS NULL
      AND COALESCE(next_poll_at_ms, charged_at_ms + :default_poll_after_ms) <= :now_ms
    ORDER BY charged_at_ms LIMIT :limit FOR UPDATE SKIP LOCKED)
RETURNING *;
