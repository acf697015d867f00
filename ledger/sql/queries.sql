-- Named queries shared by both backends. Parameters are :name placeholders, never formatting.

-- name: upsert_account_credit
INSERT INTO accounts (account_id, balance, updated_at_ms)
VALUES (:account_id, :amount, :now_ms)
ON CONFLICT (account_id) DO UPDATE
    SET balance = accounts.balance + excluded.balance, updated_at_ms = excluded.updated_at_ms
RETURNING balance;

-- name: debit_account_if_covered
-- Held credits (a pending hold, ledger/holds.py) are not spendable: the balance less them.
UPDATE accounts SET balance = balance - :amount, updated_at_ms = :now_ms
WHERE account_id = :account_id AND balance - held >= :amount
RETURNING balance - held AS balance;

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
-- A generation charged as a hold has its charge entry once the hold is captured (posted);
-- a pending or voided hold has none (a voided one was never charged).
SELECT g.generation_id FROM generations g WHERE NOT EXISTS (
    SELECT 1 FROM entries c WHERE c.kind = 'charge' AND c.generation_id = g.generation_id)
  AND NOT EXISTS (
    SELECT 1 FROM holds h WHERE h.generation_id = g.generation_id AND h.state <> 'posted');

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
INSERT INTO payment_decisions (purchase_key, decision, reason, at_ms, policy_version, rule)
VALUES (:purchase_key, :decision, :reason, :now_ms, :policy_version, :rule);

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
INSERT INTO payment_decisions (purchase_key, decision, reason, at_ms, policy_version, rule)
SELECT :purchase_key, :decision, :reason, :now_ms, :policy_version, :rule
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

-- name: insert_api_idempotency_key
INSERT INTO api_idempotency_keys (scope, idempotency_key, fingerprint, state, attempt,
                                  created_at_ms, locked_at_ms)
VALUES (:scope, :idempotency_key, :fingerprint, 'in_flight', :attempt, :now_ms, :now_ms)
ON CONFLICT (scope, idempotency_key) DO NOTHING
RETURNING attempt;

-- name: lock_api_idempotency_key
SELECT * FROM api_idempotency_keys WHERE scope = :scope AND idempotency_key = :idempotency_key;

-- name: lock_api_idempotency_key@postgresql
SELECT * FROM api_idempotency_keys WHERE scope = :scope AND idempotency_key = :idempotency_key
FOR UPDATE;

-- name: restart_api_idempotency_key
UPDATE api_idempotency_keys
SET fingerprint = :fingerprint, state = 'in_flight', attempt = :attempt, status = NULL,
    response = NULL, created_at_ms = :created_at_ms, locked_at_ms = :now_ms
WHERE scope = :scope AND idempotency_key = :idempotency_key AND attempt = :held_attempt
RETURNING attempt;

-- name: finish_api_idempotency_key
UPDATE api_idempotency_keys SET state = 'done', status = :status, response = :response
WHERE scope = :scope AND idempotency_key = :idempotency_key AND attempt = :attempt
  AND state = 'in_flight'
RETURNING attempt;

-- name: release_api_idempotency_key
DELETE FROM api_idempotency_keys
WHERE scope = :scope AND idempotency_key = :idempotency_key AND attempt = :attempt
  AND state = 'in_flight';

-- name: purge_api_idempotency_keys
DELETE FROM api_idempotency_keys WHERE created_at_ms <= :created_before_ms
RETURNING scope;

-- name: generation_receipt
SELECT g.*, r.amount AS refund_credits, r.applied_at_ms AS refunded_at_ms,
       r.failure_known_at_ms AS refund_failure_known_at_ms,
       r.policy_version AS refund_policy_version, h.state AS hold_state,
       c.policy_version AS charge_policy_version
FROM generations g
LEFT JOIN entries r ON r.generation_id = g.generation_id AND r.kind = 'refund'
LEFT JOIN holds h ON h.generation_id = g.generation_id
LEFT JOIN entries c ON c.idempotency_key = 'charge:' || g.generation_id
WHERE g.generation_id = :generation_id;

-- name: set_generation_decision
UPDATE generations SET decided_policy_version = :policy_version, decided_rule = :rule
WHERE generation_id = :generation_id;

-- name: payment_by_session
SELECT * FROM payments WHERE session_id = :session_id ORDER BY paid_at_ms, purchase_key LIMIT 1;

-- name: entries_of_purchase
SELECT * FROM entries WHERE purchase_key = :purchase_key ORDER BY id;

-- name: entries_of_generation
SELECT * FROM entries WHERE generation_id = :generation_id ORDER BY id;

-- name: payment_decisions_explained
SELECT decision, reason, at_ms, policy_version, rule FROM payment_decisions
WHERE purchase_key = :purchase_key ORDER BY id;

-- Credit kinds, lots, holds and expiry (ledger/lots.py, ledger/holds.py, ledger/expiry.py).

-- name: insert_lot
INSERT INTO credit_lots (lot_id, account_id, credit_kind, expiry_rule, expires_at_ms,
                         after_cancellation_ms, subscription_id, remaining, created_at_ms)
VALUES (:lot_id, :account_id, :credit_kind, :expiry_rule, :expires_at_ms,
        :after_cancellation_ms, :subscription_id, 0, :now_ms)
ON CONFLICT (lot_id) DO NOTHING;

-- name: lot_by_id
SELECT * FROM credit_lots WHERE lot_id = :lot_id;

-- name: spendable_lots
-- The documented consumption order: a known expiry first (soonest first), then credits that
-- may expire (after a cancellation not yet told), never-expiring last; oldest lot first
-- within each. A lot past its expiry is not spendable, even before the sweep writes it off.
SELECT lot_id, remaining - held AS free FROM credit_lots
WHERE account_id = :account_id AND remaining - held > 0
  AND (expires_at_ms IS NULL OR expires_at_ms > :now_ms)
ORDER BY CASE WHEN expires_at_ms IS NOT NULL THEN 0
              WHEN expiry_rule = 'after_cancellation' THEN 1 ELSE 2 END,
         COALESCE(expires_at_ms, 0), created_at_ms, lot_id;

-- name: adjust_lot
UPDATE credit_lots SET remaining = remaining + :remaining, held = held + :held
WHERE lot_id = :lot_id;

-- name: insert_lot_move
INSERT INTO lot_moves (entry_key, lot_id, amount) VALUES (:entry_key, :lot_id, :amount);

-- name: lot_moves_of
SELECT lot_id, amount FROM lot_moves WHERE entry_key = :entry_key ORDER BY lot_id;

-- name: adjust_account
UPDATE accounts SET balance = balance + :balance, held = held + :held, updated_at_ms = :now_ms
WHERE account_id = :account_id
RETURNING balance;

-- name: hold_account_if_covered
UPDATE accounts SET held = held + :amount, updated_at_ms = :now_ms
WHERE account_id = :account_id AND balance - held >= :amount
RETURNING balance - held AS available;

-- name: account_funds
SELECT balance, held FROM accounts WHERE account_id = :account_id;

-- name: kind_balances
SELECT credit_kind, SUM(remaining) AS remaining, SUM(held) AS held FROM credit_lots
WHERE account_id = :account_id GROUP BY credit_kind ORDER BY credit_kind;

-- name: insert_hold
INSERT INTO holds (generation_id, account_id, credits, state, created_at_ms)
VALUES (:generation_id, :account_id, :credits, 'pending', :now_ms);

-- name: insert_hold_lot
INSERT INTO hold_lots (generation_id, lot_id, credits) VALUES (:generation_id, :lot_id, :credits);

-- name: hold_lots_of
SELECT lot_id, credits FROM hold_lots WHERE generation_id = :generation_id ORDER BY lot_id;

-- name: hold_of
SELECT * FROM holds WHERE generation_id = :generation_id;

-- name: settle_hold
-- The one compare-and-set of a hold: pending -> posted (captured) or voided, once.
UPDATE holds SET state = :state, settled_at_ms = :now_ms
WHERE generation_id = :generation_id AND state = 'pending'
RETURNING account_id, credits;

-- name: start_cancellation_clock
-- The earliest cancellation wins: a later or repeated one never moves an expiry later.
UPDATE credit_lots SET expires_at_ms = :cancelled_at_ms + after_cancellation_ms
WHERE subscription_id = :subscription_id AND expiry_rule = 'after_cancellation'
  AND (expires_at_ms IS NULL OR expires_at_ms > :cancelled_at_ms + after_cancellation_ms);

-- name: due_lots
SELECT lot_id, account_id FROM credit_lots
WHERE expires_at_ms <= :now_ms AND remaining - held > 0
ORDER BY expires_at_ms, lot_id LIMIT :limit;

-- name: lock_account
SELECT balance, held FROM accounts WHERE account_id = :account_id;

-- name: lock_account@postgresql
SELECT balance, held FROM accounts WHERE account_id = :account_id FOR UPDATE;

-- name: expire_lot
-- Compare-and-set on the lot's count of expiries: of two sweeps, one writes it off.
UPDATE credit_lots SET remaining = remaining - :amount, expiries = expiries + 1
WHERE lot_id = :lot_id AND expiries = :expiries AND remaining - held = :amount
RETURNING lot_id;

-- name: audit_kind_balance_mismatch
-- Each account's balance per credit kind equals the credits its entries moved into and out
-- of the lots of that kind (an opening lot's move is the balance held before lots existed).
SELECT l.account_id, l.credit_kind, SUM(l.remaining) AS balance,
       COALESCE(SUM(m.moved), 0) AS entries_total
FROM credit_lots l LEFT JOIN (
    SELECT lot_id, SUM(amount) AS moved FROM lot_moves GROUP BY lot_id) m
    ON m.lot_id = l.lot_id
GROUP BY l.account_id, l.credit_kind
HAVING SUM(l.remaining) <> COALESCE(SUM(m.moved), 0);

-- name: audit_balance_not_in_kinds
-- The credits moved through an account's lots add up to its entries (the balance itself is
-- checked against its entries by audit_balance_mismatch, each kind by the check above).
SELECT s.account_id, COALESCE(s.total, 0) AS entries_total, COALESCE(m.moved, 0) AS kinds_total
FROM (SELECT account_id, SUM(amount) AS total FROM entries GROUP BY account_id) s
LEFT JOIN (SELECT l.account_id, SUM(lm.amount) AS moved FROM lot_moves lm
           JOIN credit_lots l ON l.lot_id = lm.lot_id GROUP BY l.account_id) m
    ON m.account_id = s.account_id
WHERE COALESCE(s.total, 0) <> COALESCE(m.moved, 0);

-- name: audit_entry_not_in_kinds
SELECT e.idempotency_key, e.amount, COALESCE(m.moved, 0) AS moved FROM entries e
LEFT JOIN (SELECT entry_key, SUM(amount) AS moved FROM lot_moves GROUP BY entry_key) m
    ON m.entry_key = e.idempotency_key
WHERE e.id > (SELECT value FROM ledger_marks WHERE name = 'lots_from_entry_id')
  AND e.amount <> COALESCE(m.moved, 0);

-- name: audit_held_mismatch
SELECT a.account_id, a.held, COALESCE(h.total, 0) AS holds_total FROM accounts a
LEFT JOIN (SELECT account_id, SUM(credits) AS total FROM holds WHERE state = 'pending'
           GROUP BY account_id) h ON h.account_id = a.account_id
WHERE a.held <> COALESCE(h.total, 0)
UNION ALL
SELECT l.lot_id, l.held, COALESCE(h.total, 0) FROM credit_lots l
LEFT JOIN (SELECT hl.lot_id, SUM(hl.credits) AS total FROM hold_lots hl
           JOIN holds ho ON ho.generation_id = hl.generation_id AND ho.state = 'pending'
           GROUP BY hl.lot_id) h ON h.lot_id = l.lot_id
WHERE l.held <> COALESCE(h.total, 0);

-- name: lots_of_account
SELECT * FROM credit_lots WHERE account_id = :account_id ORDER BY created_at_ms, lot_id;

-- Events out (``ledger.outbox``): rows are written by a trigger with each entry (0016).

-- name: outbox_due
SELECT o.id, o.entry_id, o.account_id, o.seq, o.attempts, o.first_attempt_at_ms
FROM (SELECT account_id, MIN(seq) AS seq FROM outbox WHERE state = 'pending'
      GROUP BY account_id) AS head
JOIN outbox o ON o.account_id = head.account_id AND o.seq = head.seq
WHERE o.next_attempt_at_ms <= :now_ms
  AND (o.claimed_until_ms IS NULL OR o.claimed_until_ms <= :now_ms)
ORDER BY o.next_attempt_at_ms, o.id
LIMIT :limit;

-- name: outbox_claim
UPDATE outbox SET claimed_by = :token, claimed_until_ms = :until_ms, attempts = attempts + 1,
                  first_attempt_at_ms = COALESCE(first_attempt_at_ms, :now_ms)
WHERE id = :id AND state = 'pending' AND attempts = :attempts
  AND (claimed_until_ms IS NULL OR claimed_until_ms <= :now_ms)
RETURNING id, attempts, first_attempt_at_ms;

-- name: outbox_entry
SELECT e.*, o.id AS outbox_id, o.seq, o.balance_after
FROM outbox o JOIN entries e ON e.id = o.entry_id
WHERE o.id = :id;

-- name: outbox_set_balance_after
UPDATE outbox SET balance_after = COALESCE(
    (SELECT p.balance_after FROM outbox p
     WHERE p.account_id = outbox.account_id AND p.seq = outbox.seq - 1),
    CASE WHEN outbox.seq = 1 THEN 0 END) + :amount
WHERE id = :id AND balance_after IS NULL
RETURNING balance_after;

-- name: outbox_delivered
UPDATE outbox SET state = 'delivered', delivered_at_ms = :now_ms, last_error = NULL,
                  claimed_by = NULL, claimed_until_ms = NULL
WHERE id = :id AND claimed_by = :token AND state = 'pending'
RETURNING id;

-- name: outbox_retry
UPDATE outbox SET next_attempt_at_ms = :next_attempt_at_ms, last_error = :error,
                  retries = retries + 1, claimed_by = NULL, claimed_until_ms = NULL
WHERE id = :id AND claimed_by = :token AND state = 'pending'
RETURNING id;

-- name: outbox_give_up
UPDATE outbox SET state = 'dead', dead_at_ms = :now_ms, last_error = :error,
                  claimed_by = NULL, claimed_until_ms = NULL
WHERE id = :id AND claimed_by = :token AND state = 'pending'
RETURNING id;

-- name: outbox_dead_letters
SELECT o.id, o.account_id, o.seq, o.attempts, o.first_attempt_at_ms, o.dead_at_ms,
       o.last_error, e.idempotency_key, e.kind, e.amount
FROM outbox o JOIN entries e ON e.id = o.entry_id
WHERE o.state = 'dead'
ORDER BY o.dead_at_ms, o.id;

-- name: outbox_replay
UPDATE outbox SET state = 'pending', attempts = 0, first_attempt_at_ms = NULL,
                  next_attempt_at_ms = :now_ms, dead_at_ms = NULL
WHERE id = :id AND state = 'dead'
RETURNING id;

-- name: outbox_figures
SELECT state, COUNT(*) AS events, COALESCE(SUM(retries), 0) AS retries
FROM outbox GROUP BY state;

-- name: entries_between
SELECT * FROM entries
WHERE id > :after_id AND created_at_ms >= :since_ms AND created_at_ms < :until_ms
ORDER BY id
LIMIT :limit;

-- name: outbox_purge
UPDATE outbox SET state = 'purged' WHERE id = :id AND state = 'dead'
RETURNING id;

-- name: outbox_sequences
SELECT seq FROM outbox WHERE account_id = :account_id ORDER BY seq;

-- name: audit_entry_without_event
SELECT e.id AS entry_id, e.idempotency_key FROM entries e
WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.entry_id = e.id)
ORDER BY e.id LIMIT 100;

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

-- name: charge_policy_version
SELECT policy_version FROM entries WHERE idempotency_key = :key AND kind = 'charge';

-- name: lot_remaining_at
-- A lot's credits left as the ledger stood at :at_ms: the sum of the moves of the entries
-- applied by then (a lot opens empty; its grant moves its credits in). NULL: no such lot.
SELECT l.lot_id, COALESCE(SUM(CASE WHEN e.applied_at_ms <= :at_ms THEN m.amount END), 0)
       AS remaining
FROM credit_lots l
LEFT JOIN lot_moves m ON m.lot_id = l.lot_id
LEFT JOIN entries e ON e.idempotency_key = m.entry_key
WHERE l.lot_id = :lot_id
GROUP BY l.lot_id;
