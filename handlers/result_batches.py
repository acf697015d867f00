"""Settling many provider results in one transaction, the broker message as a doorbell.

A worker woken by the message of one inbox row claims that row and other pending results
(``ledger.batch_settlement``), decides each (``handlers.generation.decide_result``) and
settles each in the same write transaction, which marks every row processed with its
effect: one commit for the whole batch instead of one per message. The messages of rows a
batch settled find them processed and ack at once.

Why claiming a batch, not a group commit across threads: the claim needs no coordination
between threads or processes (the database's row locks, ``SKIP LOCKED``, do it), a batch
keeps its size when a process has a single thread, and a message lost by the broker does not
delay anyone: its row is claimed by the next doorbell.

One event must not fail its batch:

- an event whose decision fails (unclassifiable, charge not found yet, another job's
  result) or that needs a provider call (a thin event) is left out, still pending: its own
  message applies it alone, with its retries and dead letter, as before batches;
- an event whose settlement fails inside the transaction rolls the batch back; the batch is
  run again without it, and it too is left to its own message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from handlers.generation import (
    RefundPolicy,
    ResultApplied,
    decide_result,
    report_conflict,
)
from handlers.thin_events import THIN_EVENTS
from ledger import Generation, InboxItem, Ledger, Outcome
from ledger.backends import Tx
from ledger.batch_settlement import FRESH_MS, TxGenerations, claim_results, lock_generations
from ledger.errors import RefundryError
from ledger.generations import charged_under
from ledger.lots import Deferred
from providers.base import Classification

__all__ = ["ResultBatch", "settle_result_batch"]

log = logging.getLogger(__name__)

#: How many times a batch is run again, each time without the event that failed it.
MAX_ATTEMPTS = 4


@dataclass
class ResultBatch:
    """What one batch committed: the settled rows' ids, and those it left to their
    own messages."""

    settled: dict[str, ResultApplied] = field(default_factory=dict)
    left_out: set[str] = field(default_factory=set)


class _Isolate(Exception):
    """The settlement of ``inbox_id`` failed inside the batch's transaction."""

    def __init__(self, inbox_id: str) -> None:
        super().__init__(inbox_id)
        self.inbox_id = inbox_id


def settle_result_batch(
    ledger: Ledger, *, first_id: str, limit: int, policy: RefundPolicy, fresh_ms: int = FRESH_MS
) -> ResultBatch:
    """Claim the pending result ``first_id`` and up to ``limit - 1`` others enqueued at least
    ``fresh_ms`` ago, and settle them in one transaction; what was committed. Raises only
    what opening or committing the transaction raises (the database is down): then nothing
    was settled."""
    batch = ResultBatch()
    for _ in range(MAX_ATTEMPTS):
        try:
            claim = functools.partial(
                claim_results, first_id=first_id, limit=limit, fresh_ms=fresh_ms
            )
            applied = _attempt(ledger, claim, policy, batch.left_out)
        except _Isolate as failed:
            log.warning("inbox %s left out of its batch: %s", failed.inbox_id, failed.__cause__)
            batch.left_out.add(failed.inbox_id)
            continue
        for item, earlier, done in applied:
            batch.settled[item.id] = done
            log.info(
                "generation %s: %s → %s (inbox %s, batch of %d)",
                done.generation_id,
                done.classification.outcome.value,
                done.settlement.value,
                item.id,
                len(applied),
                # the row's own ids, not those of the message that rang the doorbell
                extra={
                    "generation_id": done.generation_id,
                    "inbox_id": item.id,
                    "provider": item.provider,
                },
            )
            report_conflict(done, provider=item.provider, earlier=earlier, inbox_id=item.id)
        return batch
    return batch


def _attempt(
    ledger: Ledger,
    claim: Callable[[Tx], list[InboxItem]],
    policy: RefundPolicy,
    left_out: set[str],
) -> list[tuple[InboxItem, Outcome | None, ResultApplied]]:
    applied: list[tuple[InboxItem, Outcome | None, ResultApplied]] = []
    with ledger.db.write() as tx:
        generations = TxGenerations(tx)
        decided: list[tuple[InboxItem, Generation, Classification]] = []
        for item in claim(tx):
            if item.id in left_out or _needs_fetch(item):
                continue
            try:
                generation, classification = decide_result(
                    generations,
                    provider=item.provider,
                    payload=item.payload,
                    generation_id=item.generation_id,
                    operation=item.operation,
                    fetch_job=None,
                )
            except RefundryError:  # its own message retries or dead-letters it
                left_out.add(item.id)
                continue
            except Exception as exc:  # the transaction itself may be broken: roll back
                raise _Isolate(item.id) from exc
            decided.append((item, generation, classification))
        # Generations first, then accounts, each in id order: the order every batch takes.
        # The accounts, the rows every batch shares, are credited last, once each, so that
        # they are held only for the end of the transaction.
        lock_generations(tx, ledger.db.dialect, [g.generation_id for _, g, _ in decided])
        credit_later = Deferred()  # balances, held credits and lots: applied at the end
        for item, generation, classification in decided:
            recorded = charged_under(tx, generation.generation_id)
            try:  # by the version its charge recorded
                verdict = policy.judge(generation, classification.outcome, recorded)
            except RefundryError:  # its own message retries or dead-letters it
                left_out.add(item.id)
                continue
            try:
                settlement = ledger.settle(
                    generation_id=generation.generation_id,
                    outcome=classification.outcome,
                    reason=classification.reason,
                    refund=verdict.refund,
                    policy_version=verdict.policy_version,
                    rule=verdict.rule,
                    failure_known_at_ms=item.received_at_ms,
                    message_id=item.id,
                    inbox_id=item.id,
                    provider_job_id=classification.provider_job_id,
                    tx=tx,
                    credit_later=credit_later,
                )
            except Exception as exc:
                raise _Isolate(item.id) from exc
            done = ResultApplied(generation.generation_id, classification, settlement)
            applied.append((item, generation.outcome, done))
        ledger.credit_accounts(tx, credit_later)
    return applied


def _needs_fetch(item: InboxItem) -> bool:
    """A thin event is settled from the job fetched from its provider: not in a batch (a
    provider call must not hold the batch's transaction open)."""
    recognise = THIN_EVENTS.get(item.provider)
    return recognise is not None and recognise(item.payload) is not None
