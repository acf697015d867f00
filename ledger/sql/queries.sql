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

-- name: generation_by_provider_job_lookalike
SELECT generation_id FROM generations
WHERE provider = :provider AND lower(provider_job_id) = lower(:provider_job_id)
  AND provider_job_id IS NOT NULL
LIMIT 1;

-- name: set_generation_outcome
UPDATE generations SET outcome = :outcome, outcome_reason = :reason, outcome_at_ms = :now_ms
WHERE generation_id = :generation_id AND outcome IS NULL;

-- name: insert_outcome_report
INSERT INTO outcome_reports (generation_id, outcome, reason, disposition, message_id, received_at_ms)
VALUES (:generation_id, :outcome, :reason, :disposition, :message_id, :now_ms)
ON CONFLICT (generation_id, outcome) DO NOTHING;

-- name: outcome_reports_for
SELECT * FROM outcome_reports WHERE generation_id = :generation_id ORDER BY received_at_ms;

-- name: open_dead_letter
-- A row back only when this write opened the dead letter (new, or its earlier one resolved):
-- a compare-and-set on resolved_at_ms, so one dead letter raises one alert.
INSERT INTO dead_letters (message_id, actor, queue, reason, error_class, message, created_at_ms)
VALUES (:message_id, :actor, :queue, :reason, :error_class, :message, :now_ms)
ON CONFLICT (message_id) DO UPDATE
    SET reason = excluded.reason, error_class = excluded.error_class,
        message = excluded.message, created_at_ms = excluded.created_at_ms,
        resolved_at_ms = NULL
    WHERE dead_letters.resolved_at_ms IS NOT NULL
RETURNING id;

-- name: refresh_open_dead_letter
UPDATE dead_letters SET reason = :reason, error_class = :error_class, message = :message
WHERE message_id = :message_id AND resolved_at_ms IS NULL;

-- name: resolve_dead_letter
UPDATE dead_letters SET resolved_at_ms = :now_ms
WHERE message_id = :message_id AND resolved_at_ms IS NULL;

-- name: resolve_dead_letter_if_applied
UPDATE dead_letters SET resolved_at_ms = :now_ms
WHERE message_id = :message_id AND resolved_at_ms IS NULL
  AND EXISTS (SELECT 1 FROM inbox WHERE inbox.id = :inbox_id AND inbox.state = 'processed');

-- name: dead_letters
SELECT * FROM dead_letters WHERE resolved_at_ms IS NULL ORDER BY id;

-- name: count_dead_letters
SELECT count(*) AS n FROM dead_letters WHERE resolved_at_ms IS NULL;

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

-- name: audit_fractional_credits
-- A value equal to its own integer cast is whole: always so in PostgreSQL's BIGINT columns,
-- and what SQLite's CHECK (typeof = 'integer') guards; this proves it of the rows as stored.
SELECT 'accounts' AS "table", account_id AS id, balance AS value FROM accounts
WHERE balance <> CAST(balance AS BIGINT)
UNION ALL
SELECT 'entries', idempotency_key, amount FROM entries WHERE amount <> CAST(amount AS BIGINT)
UNION ALL
SELECT 'generations', generation_id, credits FROM generations
WHERE credits <> CAST(credits AS BIGINT);

-- name: write_probe
-- Rewrites the newest migration's row unchanged; run in a transaction that is rolled back
-- (/readyz: proves the ledger takes a write without leaving one).
UPDATE schema_migrations SET applied_at_ms = applied_at_ms
WHERE version = (SELECT MAX(version) FROM schema_migrations);

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

-- name: insert_inbox_delivery
INSERT INTO inbox (id, kind, provider, generation_id, operation, payload, received_at_ms,
                   enqueued_at_ms, delivery_key)
VALUES (:id, :kind, :provider, :generation_id, :operation, :payload, :now_ms, :now_ms,
        :delivery_key)
ON CONFLICT (provider, delivery_key) WHERE delivery_key IS NOT NULL
DO UPDATE SET deliveries = inbox.deliveries + 1
RETURNING id, state, deliveries;

-- name: reopen_dead_inbox
UPDATE inbox SET state = 'pending', payload = :payload, generation_id = :generation_id,
    operation = :operation, dead_reason = NULL, settled_at_ms = NULL, enqueued_at_ms = :now_ms
WHERE id = :id AND state = 'dead';

-- name: redeliveries
SELECT COALESCE(SUM(deliveries - 1), 0) AS n FROM inbox;

-- name: inbox_by_id
SELECT * FROM inbox WHERE id = :id;

-- name: pending_results_for
SELECT * FROM inbox
WHERE state = 'pending' AND kind = 'result' AND provider = :provider
  AND (generation_id = :generation_id OR generation_id IS NULL)
  AND received_at_ms <= :received_by_ms
ORDER BY received_at_ms, id;

-- name: pending_inbox_payload
SELECT payload FROM inbox WHERE id = :id AND state = 'pending';

-- name: settle_inbox
UPDATE inbox SET state = :state, settled_at_ms = :now_ms, dead_reason = :dead_reason,
    payload = :payload
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

-- name: claim_generation_job
UPDATE generations SET provider_job_id = :provider_job_id
WHERE generation_id = :generation_id AND provider_job_id IS NULL
RETURNING generation_id;

-- name: lock_generation@postgresql
SELECT * FROM generations WHERE generation_id = :generation_id FOR UPDATE;

-- name: refunds_in_window
SELECT e.generation_id, e.failure_known_at_ms, e.applied_at_ms, g.provider
FROM entries e LEFT JOIN generations g ON g.generation_id = e.generation_id
WHERE e.kind = 'refund' AND e.applied_at_ms >= :since_ms
ORDER BY e.applied_at_ms;

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

-- name: upsert_payment
INSERT INTO payments (purchase_key, provider, state, account_id, price_id, credits, amount,
                      currency, customer, charge_id, session_id, paid_at_ms, created_at_ms,
                      updated_at_ms)
VALUES (:purchase_key, :provider, :state, :account_id, :price_id, :credits, :amount,
        :currency, :customer, :charge_id, :session_id, :paid_at_ms, :now_ms, :now_ms)
ON CONFLICT (purchase_key) DO UPDATE SET
    account_id = COALESCE(payments.account_id, excluded.account_id),
    price_id   = COALESCE(payments.price_id, excluded.price_id),
    credits    = COALESCE(payments.credits, excluded.credits),
    amount     = COALESCE(payments.amount, excluded.amount),
    currency   = COALESCE(payments.currency, excluded.currency),
    customer   = COALESCE(payments.customer, excluded.customer),
    charge_id  = COALESCE(payments.charge_id, excluded.charge_id),
    session_id = COALESCE(payments.session_id, excluded.session_id),
    paid_at_ms = COALESCE(payments.paid_at_ms, excluded.paid_at_ms),
    state = CASE
        WHEN payments.state IN ('unpaid', 'failed') AND excluded.state = 'paid' THEN 'paid'
        WHEN payments.state = 'unpaid' AND excluded.state = 'failed' THEN 'failed'
        ELSE payments.state END,
    updated_at_ms = excluded.updated_at_ms;

-- name: lock_payment
SELECT * FROM payments WHERE purchase_key = :purchase_key;

-- name: lock_payment@postgresql
SELECT * FROM payments WHERE purchase_key = :purchase_key FOR UPDATE;

-- name: payment_by_key
SELECT * FROM payments WHERE purchase_key = :purchase_key;

-- name: payment_by_charge
SELECT * FROM payments WHERE charge_id = :charge_id;

-- name: update_payment_state
UPDATE payments SET state = :state, refund_reason = COALESCE(:refund_reason, refund_reason),
    refund_id = COALESCE(:refund_id, refund_id), updated_at_ms = :now_ms
WHERE purchase_key = :purchase_key;

-- name: next_refund_attempt
UPDATE payments SET refund_attempt = refund_attempt + 1, updated_at_ms = :now_ms
WHERE purchase_key = :purchase_key;

-- name: add_payment_clawback
UPDATE payments SET clawed_credits = clawed_credits + :credits,
    flag = COALESCE(:flag, flag), updated_at_ms = :now_ms
WHERE purchase_key = :purchase_key;

-- name: insert_payment_reversal
INSERT INTO payment_reversals (cause_id, purchase_key, kind, amount, state, at_ms)
VALUES (:cause_id, :purchase_key, :kind, :amount, :state, :now_ms)
ON CONFLICT (cause_id) DO NOTHING
RETURNING cause_id;

-- name: update_payment_reversal_state
UPDATE payment_reversals SET state = :state WHERE cause_id = :cause_id;

-- name: payments_with_pending_refunds
SELECT DISTINCT p.* FROM payments p JOIN payment_reversals r ON r.purchase_key = p.purchase_key
WHERE r.state = 'pending' ORDER BY p.purchase_key LIMIT :limit;

-- name: payment_reversal
SELECT * FROM payment_reversals WHERE cause_id = :cause_id;

-- name: total_payment_reversals
UPDATE payments SET refunded_amount = (
    SELECT COALESCE(SUM(amount), 0) FROM payment_reversals
    WHERE payment_reversals.purchase_key = payments.purchase_key
      AND payment_reversals.state = 'succeeded'), updated_at_ms = :now_ms
WHERE purchase_key = :purchase_key;

-- name: insert_payment_decision
INSERT INTO payment_decisions (purchase_key, decision, reason, at_ms)
VALUES (:purchase_key, :decision, :reason, :now_ms);

-- name: payment_decisions_for
SELECT decision, reason, at_ms FROM payment_decisions WHERE purchase_key = :purchase_key
ORDER BY id;

-- name: insert_pack_entry
INSERT INTO entries (idempotency_key, account_id, kind, amount, generation_id, reason,
                     policy_version, created_at_ms, failure_known_at_ms, applied_at_ms,
                     purchase_key)
VALUES (:idempotency_key, :account_id, :kind, :amount, NULL, :reason, :policy_version,
        :now_ms, NULL, :now_ms, :purchase_key)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id;

-- name: same_purchase_nearby
SELECT * FROM payments
WHERE purchase_key <> :purchase_key AND COALESCE(customer, 'account:' || account_id) = :buyer
  AND price_id = :price_id AND amount = :amount AND state = 'granted'
  AND paid_at_ms BETWEEN :paid_at_ms - :window_ms AND :paid_at_ms + :window_ms
ORDER BY paid_at_ms, purchase_key LIMIT 1;

-- name: mark_payment_duplicate
UPDATE payments SET duplicate_of = :duplicate_of, updated_at_ms = :now_ms
WHERE purchase_key = :purchase_key;

-- name: duplicates_refunding
SELECT * FROM payments WHERE duplicate_of = :purchase_key AND state = 'refunding'
ORDER BY paid_at_ms, purchase_key;

-- name: lock_customer
SELECT 1 AS locked;

-- name: lock_customer@postgresql
SELECT pg_advisory_xact_lock(hashtext(:customer)) IS NULL AS locked;

-- name: lock_subscription
SELECT 1 AS locked;

-- name: lock_subscription@postgresql
SELECT pg_advisory_xact_lock(hashtext('subscription'), hashtext(:subscription_id)) IS NULL
    AS locked;

-- name: unlanded_payments
SELECT * FROM payments WHERE state IN ('paid', 'refunding') AND paid_at_ms < :paid_before_ms
ORDER BY paid_at_ms LIMIT :limit;

-- name: audit_pack_granted_and_refunded
SELECT p.purchase_key, p.credits, p.clawed_credits FROM payments p
WHERE p.state = 'refunded' AND p.clawed_credits < COALESCE(p.credits, 0) AND EXISTS (
    SELECT 1 FROM entries e WHERE e.kind = 'grant' AND e.purchase_key = p.purchase_key);

-- name: audit_pack_granted_state_without_grant
SELECT p.purchase_key FROM payments p WHERE p.state = 'granted' AND NOT EXISTS (
    SELECT 1 FROM entries e WHERE e.kind = 'grant' AND e.purchase_key = p.purchase_key);

-- name: audit_pack_unlanded_past_window
SELECT purchase_key, paid_at_ms FROM payments
WHERE state IN ('paid', 'refunding') AND paid_at_ms < :paid_before_ms;

-- name: dead_letter_by_message
SELECT * FROM dead_letters WHERE message_id = :message_id;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE message_id = :message_id;

-- name: reopen_inbox
UPDATE inbox SET state = 'pending', dead_reason = NULL, settled_at_ms = NULL,
    enqueued_at_ms = :now_ms
WHERE id = :id AND state = 'dead';

-- name: upsert_subscription_cancellation
INSERT INTO subscription_cancellations (subscription_id, customer, cancelled_at_ms, recorded_at_ms)
VALUES (:subscription_id, :customer, :cancelled_at_ms, :now_ms)
ON CONFLICT (subscription_id) DO UPDATE SET
    cancelled_at_ms = CASE
        WHEN excluded.cancelled_at_ms < subscription_cancellations.cancelled_at_ms
        THEN excluded.cancelled_at_ms
        ELSE subscription_cancellations.cancelled_at_ms END
RETURNING *;

-- name: subscription_cancellation
SELECT * FROM subscription_cancellations WHERE subscription_id = :subscription_id;

-- name: upsert_subscription_charge
INSERT INTO subscription_charges (invoice_id, subscription_id, customer, payment_intent, amount,
                                  currency, paid_at_ms, state, created_at_ms, updated_at_ms)
VALUES (:invoice_id, :subscription_id, :customer, :payment_intent, :amount, :currency,
        :paid_at_ms, 'kept', :now_ms, :now_ms)
ON CONFLICT (invoice_id) DO UPDATE SET
    payment_intent = COALESCE(subscription_charges.payment_intent, excluded.payment_intent),
    updated_at_ms = excluded.updated_at_ms
RETURNING *;

-- name: subscription_charge
SELECT * FROM subscription_charges WHERE invoice_id = :invoice_id;

-- name: lock_subscription_charge
SELECT * FROM subscription_charges WHERE invoice_id = :invoice_id;

-- name: lock_subscription_charge@postgresql
SELECT * FROM subscription_charges WHERE invoice_id = :invoice_id FOR UPDATE;

-- name: subscription_charges_of
SELECT * FROM subscription_charges WHERE subscription_id = :subscription_id
ORDER BY paid_at_ms, invoice_id;

-- name: update_subscription_charge
UPDATE subscription_charges SET state = :state,
    payment_intent = COALESCE(payment_intent, :payment_intent),
    refund_id = COALESCE(:refund_id, refund_id), updated_at_ms = :now_ms
WHERE invoice_id = :invoice_id;

-- name: insert_payment_decision_once
INSERT INTO payment_decisions (purchase_key, decision, reason, at_ms)
SELECT :purchase_key, :decision, :reason, :now_ms
WHERE NOT EXISTS (
    SELECT 1 FROM payment_decisions
    WHERE purchase_key = :purchase_key AND decision = :decision AND reason = :reason)
RETURNING id;

-- name: defer_inbox
UPDATE inbox SET enqueued_at_ms = :until_ms
WHERE id = :id AND state = 'pending' AND enqueued_at_ms < :until_ms;

-- The on-call views (Prometheus metrics read at scrape time, the ops page): figures over the
-- whole ledger, so they hold across worker hosts and restarts.

-- name: ops_refunds_by_provider_outcome
SELECT g.provider AS provider, COALESCE(g.outcome, 'unknown') AS outcome, count(*) AS n
FROM entries e JOIN generations g ON g.generation_id = e.generation_id
WHERE e.kind = 'refund'
GROUP BY g.provider, COALESCE(g.outcome, 'unknown');

-- name: ops_refund_latency_buckets
SELECT count(*) AS n,
       COALESCE(sum(applied_at_ms - failure_known_at_ms), 0) AS sum_ms,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms > :sla_ms THEN 1 ELSE 0 END), 0)
           AS breaches,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le0 THEN 1 ELSE 0 END), 0) AS le0,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le1 THEN 1 ELSE 0 END), 0) AS le1,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le2 THEN 1 ELSE 0 END), 0) AS le2,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le3 THEN 1 ELSE 0 END), 0) AS le3,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le4 THEN 1 ELSE 0 END), 0) AS le4,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le5 THEN 1 ELSE 0 END), 0) AS le5,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le6 THEN 1 ELSE 0 END), 0) AS le6,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le7 THEN 1 ELSE 0 END), 0) AS le7,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le8 THEN 1 ELSE 0 END), 0) AS le8,
       COALESCE(sum(CASE WHEN applied_at_ms - failure_known_at_ms <= :le9 THEN 1 ELSE 0 END), 0) AS le9
FROM entries WHERE kind = 'refund';

-- name: ops_dead_letters_by_reason
SELECT queue, error_class, count(*) AS n FROM dead_letters WHERE resolved_at_ms IS NULL
GROUP BY queue, error_class;

-- name: ops_dead_letters_listed
SELECT d.message_id, d.actor, d.queue, d.reason, d.error_class, d.created_at_ms,
       i.provider AS provider
FROM dead_letters d LEFT JOIN inbox i ON i.id = d.message_id
WHERE d.resolved_at_ms IS NULL ORDER BY d.id;

-- name: ops_count_inbox_pending
-- Pending events not waiting on an open dead letter (those count in refundry_dead_letters).
SELECT count(*) AS n FROM inbox i
WHERE i.state = 'pending' AND NOT EXISTS (
    SELECT 1 FROM dead_letters d WHERE d.message_id = i.id AND d.resolved_at_ms IS NULL);

-- name: ops_count_unlanded_payments
SELECT count(*) AS n FROM payments
WHERE state IN ('paid', 'refunding') AND paid_at_ms < :paid_before_ms;

-- name: ops_decisions_by_kind
SELECT decision, count(*) AS n FROM payment_decisions GROUP BY decision;

-- name: ops_count_conflicts
SELECT count(*) AS n FROM outcome_reports WHERE disposition = 'conflict';

-- name: ops_recent_conflicts
SELECT o.generation_id, g.provider, o.outcome, o.reason, o.received_at_ms,
       g.outcome AS applied_outcome
FROM outcome_reports o JOIN generations g ON g.generation_id = o.generation_id
WHERE o.disposition = 'conflict' ORDER BY o.received_at_ms DESC LIMIT :limit;

-- name: ops_recent_alerts
SELECT purchase_key, reason, at_ms FROM payment_decisions WHERE decision = 'alert'
ORDER BY id DESC LIMIT :limit;

-- name: start_ops_session
INSERT INTO ops_sessions (id, started_at_ms) VALUES (:id, :now_ms);

-- name: live_ops_session
SELECT id FROM ops_sessions
WHERE id = :id AND ended_at_ms IS NULL AND started_at_ms > :started_after_ms;

-- name: end_ops_session
UPDATE ops_sessions SET ended_at_ms = :now_ms WHERE id = :id AND ended_at_ms IS NULL;

-- name: forget_old_ops_sessions
DELETE FROM ops_sessions WHERE started_at_ms <= :started_before_ms;

-- name: count_refunds_since
SELECT count(*) AS n FROM entries WHERE kind = 'refund' AND applied_at_ms >= :since_ms;

-- name: count_pending_inbox
SELECT count(*) AS n FROM inbox WHERE state = 'pending';

-- name: claim_pending_results
SELECT * FROM inbox
WHERE state = 'pending' AND kind = 'result' AND enqueued_at_ms <= :now_ms
ORDER BY enqueued_at_ms LIMIT :limit;

-- name: claim_pending_results@postgresql
SELECT * FROM inbox
WHERE state = 'pending' AND kind = 'result' AND enqueued_at_ms <= :now_ms
ORDER BY enqueued_at_ms LIMIT :limit
FOR UPDATE SKIP LOCKED;

-- name: claim_pending_inbox
SELECT * FROM inbox WHERE id = :id AND state = 'pending';

-- name: claim_pending_inbox@postgresql
SELECT * FROM inbox WHERE id = :id AND state = 'pending' FOR UPDATE;

-- name: lock_generations@postgresql
SELECT generation_id FROM generations WHERE generation_id = ANY(:generation_ids)
ORDER BY generation_id FOR UPDATE;

-- name: pg_connection_limits
-- PostgreSQL only (workers.pg_pools): the connections the server allows ordinary roles.
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved

-- name: pg_connections_by_name
-- PostgreSQL only (workers.pg_pools): every client connection now, by application name.
SELECT application_name AS name, count(*) AS n
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY application_name
