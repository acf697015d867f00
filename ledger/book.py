"""The credit ledger's operations: grant, charge, settle (refund), balance.

Every money effect is one entry with a unique idempotency key, written in the same
transaction as the balance change; the dedupe lives in the database's unique indexes, never
in application code. A key replayed with other inputs raises ``IdempotencyConflict``.

Every free-text reason (an entry's, an outcome's) is stored as ``ledger.redaction`` leaves
it: a provider's error message may quote the credential it refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger import holds, keys
from ledger.backends import Database, Tx, required
from ledger.clock import now_ms
from ledger.credits import whole_credits
from ledger.dead_letters import DeadLetters
from ledger.entries import insert_entry
from ledger.errors import (
    ChargeNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    LedgerError,
)
from ledger.expiry import ExpiryResult, expire_due
from ledger.funds import available as spendable
from ledger.generations import Generation, Settlement, decided_by, same_job, set_deadlines
from ledger.holds import CHARGE_MODES
from ledger.inbox import Inbox, settle_in
from ledger.ledger_reads import LedgerReads
from ledger.lots import PROMO, Deferred, LotTerms, apply, give_back, open_lot, take
from ledger.outcomes import TERMINAL, Outcome
from ledger.payments import Payments
from ledger.redaction import redact_text
from ledger.subscriptions import Subscriptions

__all__ = ["CHARGE_MODES", "Generation", "Ledger", "Settlement", "now_ms"]


class Ledger(LedgerReads):
    """The ledger over one database. Thread-safe; one per process is enough."""

    def __init__(self, db: Database, *, policy_version: str) -> None:
        self.db = db
        self.policy_version = policy_version
        self.inbox = Inbox(db)
        self.payments = Payments(db, policy_version=policy_version)
        self.subscriptions = Subscriptions(db)
        self.dead = DeadLetters(db)

    def under(self, policy_version: str) -> Ledger:
        """This ledger (the same database) writing ``policy_version`` on its entries: the
        version a decision was made under (``handlers.policy_rules``)."""
        if policy_version == self.policy_version:
            return self
        return Ledger(self.db, policy_version=policy_version)

    # -- grants -----------------------------------------------------------------------------

    def grant(
        self,
        *,
        account_id: str,
        credits: int,
        idempotency_key: str,
        reason: str,
        terms: LotTerms = PROMO,
    ) -> int:
        """Add ``credits`` once per ``idempotency_key``; return the balance.

        The credits open a lot of ``terms.credit_kind`` with ``terms``' expiry
        (``ledger.lots``; by default never-expiring ``promo`` credits).

        Raises ``InvalidAmount`` unless ``credits`` is a whole number in range
        (``ledger.credits``), ``IdempotencyConflict`` when the key was used with other inputs.
        """
        credits = whole_credits(credits)
        key = keys.grant(idempotency_key)
        with self.db.write() as tx:
            tx.all("ensure_account", account_id=account_id, now_ms=now_ms())
            inserted = self._insert_entry(
                tx,
                key=key,
                account_id=account_id,
                kind="grant",
                amount=credits,
                generation_id=None,
                reason=reason,
                failure_known_at_ms=None,
            )
            if inserted:
                balance = self._credit(tx, account_id, credits)
                open_lot(
                    tx,
                    lot_id=key,
                    account_id=account_id,
                    credits=credits,
                    terms=terms,
                    entry_key=key,
                )
                return balance
            self._same_entry(tx, key, account_id=account_id, amount=credits)
            lot = tx.one("lot_by_id", lot_id=key)
            if lot is not None and (lot["credit_kind"], lot["expiry_rule"]) != (
                terms.credit_kind,
                terms.expiry_rule,
            ):
                raise IdempotencyConflict(
                    "idempotency key reused with other inputs", key=key, field="credit_kind"
                )
            return self._balance(tx, account_id)

    # -- charges ----------------------------------------------------------------------------

    def charge(
        self,
        *,
        generation_id: str,
        account_id: str,
        provider: str,
        operation: str,
        credits: int,
        provider_job_id: str | None = None,
        poll_after_ms: int | None = None,
        deadline_after_ms: int | None = None,
        tx: Tx | None = None,
        mode: str = "debit",
    ) -> int:
        """Debit ``credits`` for a generation, once per ``generation_id``; return the balance
        (the credits left to spend: the balance less held credits).

        ``mode`` (``CHARGE_MODES``, the policy's ``charge_mode`` in force at the charge):
        ``debit`` writes the charge entry now, taking the credits from the account's lots in
        the consumption order (``ledger.lots``); ``hold`` reserves them (``ledger.holds``)
        and the outcome captures (charge entry) or voids (no entry) the hold.

        ``poll_after_ms`` / ``deadline_after_ms`` (from the charge time) tell the stuck-
        generation sweeper when to poll the provider and when to give up and refund.

        Raises ``InvalidAmount`` unless ``credits`` is a whole number in range
        (``ledger.credits``), ``InsufficientCredits`` rather than overdraw, and
        ``IdempotencyConflict`` when the generation was already charged with other inputs (a
        replay without ``provider_job_id`` matches a charge whose job a result recorded since).
        Inside the caller's write transaction ``tx`` when given (many charges, one commit).
        """
        credits = whole_credits(credits)
        if mode not in CHARGE_MODES:
            raise InvalidInput(f"one of {', '.join(CHARGE_MODES)}", field="mode", mode=mode)
        ts = now_ms()
        with self._writing(tx) as tx:
            tx.all("ensure_account", account_id=account_id, now_ms=ts)
            created = tx.one(
                "insert_generation",
                generation_id=generation_id,
                account_id=account_id,
                provider=provider,
                provider_job_id=provider_job_id,
                operation=operation,
                credits=credits,
                now_ms=ts,
            )
            if created is None:
                existing = Generation.from_row(
                    required(tx.one("generation_by_id", generation_id=generation_id))
                )
                asked = (account_id, provider, provider_job_id, operation, credits)
                held = (
                    existing.account_id,
                    existing.provider,
                    existing.provider_job_id if provider_job_id is not None else None,
                    existing.operation,
                    existing.credits,
                )
                if asked != held:
                    raise IdempotencyConflict(
                        "generation already charged with other inputs",
                        generation_id=generation_id,
                    )
                return spendable(tx, account_id)
            if mode == "hold":
                available = holds.place(
                    tx, generation_id=generation_id, account_id=account_id, credits=credits
                )
                set_deadlines(tx, generation_id, ts, poll_after_ms, deadline_after_ms)
                return available
            debited = tx.one(
                "debit_account_if_covered", account_id=account_id, amount=credits, now_ms=ts
            )
            if debited is None:
                raise InsufficientCredits(
                    account_id=account_id, credits=credits, balance=self._balance(tx, account_id)
                )
            self._insert_entry(
                tx,
                key=keys.charge(generation_id),
                account_id=account_id,
                kind="charge",
                amount=-credits,
                generation_id=generation_id,
                reason=f"{provider} {operation}",
                failure_known_at_ms=None,
            )
            take(tx, account_id=account_id, credits=credits, entry_key=keys.charge(generation_id))
            set_deadlines(tx, generation_id, ts, poll_after_ms, deadline_after_ms)
            return int(debited["balance"])

    # -- outcomes and refunds ---------------------------------------------------------------

    def settle(
        self,
        *,
        generation_id: str,
        outcome: Outcome,
        reason: str,
        refund: bool,
        failure_known_at_ms: int,
        message_id: str | None = None,
        inbox_id: str | None = None,
        provider_job_id: str | None = None,
        tx: Tx | None = None,
        credit_later: dict[str, int] | None = None,
        policy_version: str | None = None,
        rule: str | None = None,
    ) -> Settlement:
        """Record a classified outcome; the first terminal one wins, atomically.

        ``refund`` is the handler's policy decision for this outcome, made under the policy
        version named ``policy_version`` (the one in force when the generation was charged,
        ``handlers.generation.RefundPolicy``), which its refund entry records; None: this
        ledger's default version; ``rule``, the rule of it that decided, is recorded with both
        (``ledger.generations.decided_by``) when given. A later contradicting
        outcome is recorded as a conflict and never applied. ``inbox_id`` is marked processed
        in the same transaction.

        ``provider_job_id`` is the job the result names. A generation charged without one
        takes the first result's job, compare-and-set in this transaction; from then on, as
        for one charged with a job, a result naming another job raises
        ``ResultForAnotherJob`` (so does one naming a job another generation holds, exactly
        or differing only in case), and nothing is recorded. Ids are compared exactly and
        stored as given; the caller holds them to the charge's rule first
        (``workers.validation.job_id``).

        Inside the caller's write transaction ``tx`` when given (a batch of settlements, one
        commit: ``ledger.batch_settlement``); an error then leaves ``tx`` to be rolled back.
        With ``credit_later`` (account → credits), a refund's credits are added there instead
        of to the balance: the caller credits them with :meth:`credit_accounts` before ``tx``
        commits, so a batch locks each account once, at its end. A ``ledger.lots.Deferred``
        also defers the lots and held credits a refund or a hold's settlement changes.

        A generation charged as a hold (``ledger.holds``) is captured by a kept outcome
        (its charge entry written now) and voided by a refunded one (no entry: never
        charged), each once, by a compare-and-set keyed by the generation.
        """
        if outcome not in TERMINAL:
            if inbox_id is not None:
                with self._writing(tx) as pending_tx:
                    settle_in(pending_tx, inbox_id, state="processed")
            return Settlement.PENDING
        if refund and outcome is Outcome.SUCCEEDED:
            raise LedgerError(
                "a succeeded generation is never refunded", generation_id=generation_id
            )
        reason = redact_text(reason)
        with self._writing(tx) as tx:
            row = tx.one("lock_generation", generation_id=generation_id)
            if row is None:
                raise ChargeNotFound(generation_id=generation_id)
            gen = Generation.from_row(row)
            if provider_job_id is not None:
                same_job(tx, gen, provider_job_id)
            ts = now_ms()
            if inbox_id is not None:
                settle_in(tx, inbox_id, state="processed")
            if gen.outcome is not None:
                if gen.outcome is outcome:
                    return Settlement.DUPLICATE
                tx.all(
                    "insert_outcome_report",
                    generation_id=generation_id,
                    outcome=outcome.value,
                    reason=reason,
                    disposition="conflict",
                    message_id=message_id,
                    now_ms=ts,
                )
                return Settlement.CONFLICT
            tx.all(
                "set_generation_outcome",
                generation_id=generation_id,
                outcome=outcome.value,
                reason=reason,
                now_ms=ts,
            )
            if rule is not None:
                decided_by(tx, generation_id, policy_version or self.policy_version, rule)
            tx.all(
                "insert_outcome_report",
                generation_id=generation_id,
                outcome=outcome.value,
                reason=reason,
                disposition="applied",
                message_id=message_id,
                now_ms=ts,
            )
            later = credit_later if isinstance(credit_later, Deferred) else Deferred()
            version = policy_version or self.policy_version
            if holds.is_pending(tx, generation_id):
                holds.settle(tx, gen, refund=refund, later=later, policy_version=version)
            elif refund:
                self._refund(
                    tx,
                    gen,
                    reason=f"{outcome.value}: {reason}",
                    failure_known_at_ms=failure_known_at_ms,
                    later=later,
                    policy_version=version,
                )
            if later is not credit_later:
                if credit_later is not None:  # a plain dict: it takes the balances
                    for account_id, credits in later.items():
                        credit_later[account_id] = credit_later.get(account_id, 0) + credits
                    later.clear()
                apply(tx, later)
            return Settlement.REFUNDED if refund else Settlement.KEPT

    def _refund(
        self,
        tx: Tx,
        gen: Generation,
        *,
        reason: str,
        failure_known_at_ms: int,
        later: Deferred,
        policy_version: str,
    ) -> bool:
        """Give back exactly the charge, at most once (the key is the generation's), to the
        lots the charge took it from. Only ``settle`` calls this, after recording the
        outcome that justifies it; the balance and lots change in ``later``."""
        credits = gen.credits
        key = keys.refund(gen.generation_id)
        inserted = self._insert_entry(
            tx,
            key=key,
            account_id=gen.account_id,
            kind="refund",
            amount=credits,
            generation_id=gen.generation_id,
            reason=reason,
            failure_known_at_ms=failure_known_at_ms,
            policy_version=policy_version,
        )
        if inserted:
            later.account(gen.account_id, balance=credits)
            give_back(
                tx,
                account_id=gen.account_id,
                credits=credits,
                from_key=keys.charge(gen.generation_id),
                entry_key=key,
                later=later,
            )
        return inserted

    def credit_accounts(self, tx: Tx, credits: dict[str, int]) -> None:
        """Add each account's credits (account → whole credits) in ``tx``, in account order
        (the order every batch takes): the refunds ``settle(credit_later=…)`` deferred; with
        a ``ledger.lots.Deferred``, then the held credits and lots it holds, in lot order."""
        apply(tx, credits)

    # -- expiry -----------------------------------------------------------------------------

    def expire_due(self, *, at_ms: int | None = None, limit: int = 500) -> ExpiryResult:
        """Write off the credits of lots past their expiry (``ledger.expiry``): one
        ``expiry`` entry per lot and expiry, idempotent; ``at_ms`` replaces the clock."""
        return expire_due(self.db, policy_version=self.policy_version, at_ms=at_ms, limit=limit)

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _writing(self, tx: Tx | None) -> Iterator[Tx]:
        """The caller's write transaction ``tx``, else a new one committed on exit."""
        if tx is not None:
            yield tx
            return
        with self.db.write() as new:
            yield new

    def _insert_entry(
        self,
        tx: Tx,
        *,
        key: str,
        account_id: str,
        kind: str,
        amount: int,
        generation_id: str | None,
        reason: str,
        failure_known_at_ms: int | None,
        policy_version: str | None = None,
    ) -> bool:
        """Insert one entry under ``policy_version`` (None: this ledger's default):
        ``ledger.entries.insert_entry``."""
        return insert_entry(
            tx,
            key=key,
            account_id=account_id,
            kind=kind,
            amount=amount,
            generation_id=generation_id,
            reason=reason,
            policy_version=policy_version or self.policy_version,
            failure_known_at_ms=failure_known_at_ms,
        )

    def _same_entry(self, tx: Tx, key: str, **expected: Any) -> None:
        held = required(tx.one("entry_by_key", idempotency_key=key))
        for field, value in expected.items():
            if held[field] != value:
                raise IdempotencyConflict(
                    "idempotency key reused with other inputs", key=key, field=field
                )

    def _credit(self, tx: Tx, account_id: str, amount: int) -> int:
        row = required(
            tx.one("upsert_account_credit", account_id=account_id, amount=amount, now_ms=now_ms())
        )
        return int(row["balance"])
