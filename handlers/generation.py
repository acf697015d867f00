"""What a generation's provider result means for its credits, and applying it.

The provider adapter says what happened (``providers/``); this module decides what we do
about it: which outcomes are refunded, how the charge is found, and what a contradiction
means. The ledger applies the decision atomically: the first terminal outcome wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.alerts import alert
from handlers.policy_file import SHIPPED, shipped_policy
from handlers.policy_rules import PolicyBook, PolicyVersion
from handlers.thin_events import THIN_EVENTS, JobFetcher, resolve
from ledger import Generation, InboxItem, Ledger, Outcome, Settlement
from ledger.errors import (
    ChargeNotFound,
    PolicyVersionUnknown,
    ResultForAnotherJob,
    Unclassifiable,
)
from ledger.generations import charged_under
from providers.base import Classification
from providers.registry import classify
from workers import validation

__all__ = [
    "SUCCESS_KEPT",
    "Generations",
    "RefundPolicy",
    "ResultApplied",
    "Verdict",
    "apply_kept_result",
    "apply_result",
    "decide_result",
    "report_conflict",
    "reported_job_id",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an outcome is refunded, the name of the policy version that said so, and the
    rule of it that did (a policy key, or :data:`SUCCESS_KEPT`)."""

    refund: bool
    policy_version: str
    rule: str


SUCCESS_KEPT = "always: a succeeded generation keeps its charge"
"""The rule of a success: no policy version can refund it (``handlers.policy_rules``)."""


@dataclass(frozen=True, slots=True)
class RefundPolicy:
    """Which terminal outcomes give the credits back: the rules of the policy version its
    charge recorded (by name), even after a newer version took effect; a charge that
    recorded none yet (a pending hold) by the version in force at its charge time.
    Default: the shipped policy. ``reread`` reads the policy file again (the process's
    book may be older than the file the charge was decided under)."""

    book: PolicyBook = field(default_factory=shipped_policy)
    reread: Callable[[], PolicyBook] | None = None

    def judge(self, generation: Generation, outcome: Outcome, charged_under: str | None) -> Verdict:
        """The verdict on ``outcome`` of ``generation`` by :meth:`version_of`; a success is
        never refunded. Raises ``PolicyVersionUnknown`` (retried, then dead-lettered)."""
        version = self.version_of(generation, charged_under)
        if outcome is Outcome.SUCCEEDED:
            return Verdict(False, version.name, SUCCESS_KEPT)
        rules = version.rules
        refund = rules.refunds(generation.provider, generation.operation, outcome)
        rule = rules.deciding_rule(generation.provider, generation.operation)
        return Verdict(refund, version.name, rule)

    def version_of(self, generation: Generation, charged_under: str | None) -> PolicyVersion:
        """The version that judges ``generation``: the one named ``charged_under`` (its
        charge entry's), looked up again in a fresh read of the policy file when this
        book lacks it, never another version in its place (``PolicyVersionUnknown``);
        None (no charge entry yet) or a book that is the shipped default alone (one
        version, judging charges recorded before policy files existed): the version in
        force at ``charged_at_ms``."""
        if charged_under is None or self.book.source == SHIPPED:
            return self.book.at(generation.charged_at_ms)
        found = self.book.named(charged_under)
        if found is None and self.reread is not None:
            found = self.reread().named(charged_under)
        if found is None:
            raise PolicyVersionUnknown(
                generation_id=generation.generation_id, policy_version=charged_under
            )
        return found


@dataclass(frozen=True, slots=True)
class ResultApplied:
    generation_id: str
    classification: Classification
    settlement: Settlement


def apply_result(
    ledger: Ledger,
    *,
    provider: str,
    payload: Mapping[str, Any],
    generation_id: str | None,
    operation: str | None,
    failure_known_at_ms: int,
    policy: RefundPolicy,
    message_id: str | None = None,
    fetch_job: JobFetcher | None = None,
    inbox_id: str | None = None,
) -> ResultApplied:
    """Classify one provider result and settle its generation.

    A thin webhook event (only a job id) is resolved through ``fetch_job`` into the job it
    names first (``handlers.thin_events``). Raises ``Unclassifiable`` (never guessed at) and
    ``ChargeNotFound`` (retried: the charge may not be recorded yet, then dead-lettered after
    the grace period) and ``ResultForAnotherJob`` (dead-lettered: the payload's job id is not
    the one charged for ``generation_id``) and ``InvalidIdentifier`` (dead-lettered: the
    payload's job id breaks the charge's rule, ``workers.validation.job_id``: padded,
    invisible characters, another shape; never trimmed or folded). ``inbox_id`` is marked
    processed in the settlement's transaction.
    """
    generation, classification = decide_result(
        ledger,
        provider=provider,
        payload=payload,
        generation_id=generation_id,
        operation=operation,
        fetch_job=fetch_job,
    )
    outcome = classification.outcome
    with ledger.db.read() as tx:
        recorded = charged_under(tx, generation.generation_id)
    verdict = policy.judge(generation, outcome, recorded)
    settlement = ledger.settle(
        generation_id=generation.generation_id,
        outcome=outcome,
        reason=classification.reason,
        refund=verdict.refund,
        policy_version=verdict.policy_version,
        rule=verdict.rule,
        failure_known_at_ms=failure_known_at_ms,
        message_id=message_id,
        inbox_id=inbox_id,
        provider_job_id=classification.provider_job_id,
    )
    applied = ResultApplied(generation.generation_id, classification, settlement)
    report_conflict(applied, provider=provider, earlier=generation.outcome, inbox_id=inbox_id)
    return applied


class Generations(Protocol):
    """Where charged generations are looked up: the ledger, or an open transaction."""

    def generation(self, generation_id: str) -> Generation | None: ...

    def generation_by_job(self, provider: str, provider_job_id: str) -> Generation | None: ...


def decide_result(
    generations: Generations,
    *,
    provider: str,
    payload: Mapping[str, Any],
    generation_id: str | None,
    operation: str | None,
    fetch_job: JobFetcher | None,
) -> tuple[Generation, Classification]:
    """The generation a result is for and what it says, without settling anything; raises
    what :func:`apply_result` raises before it settles."""
    charged = _charged(generations, provider, generation_id) if generation_id is not None else None
    resolved = resolve(
        provider, payload, fetch_job, charged_job_id=charged.provider_job_id if charged else None
    )
    classification = resolved.classify(operation)
    if classification.provider_job_id is not None:
        # The charge's rule, before the id finds, settles or is recorded on any generation.
        validation.job_id(classification.provider_job_id, provider=provider)
    generation = charged or _find_generation(generations, provider, classification)
    _same_job(generation, classification.provider_job_id)
    if operation is None and generation.operation:
        # The operation recorded at charge time decides what "the output" is.
        classification = resolved.classify(generation.operation)
    return generation, classification


def report_conflict(
    applied: ResultApplied, *, provider: str, earlier: Outcome | None, inbox_id: str | None
) -> None:
    """Log and alert a conflicting outcome (recorded, never applied) once it is committed;
    nothing for any other settlement. ``earlier`` is the outcome the generation held."""
    if applied.settlement is not Settlement.CONFLICT:
        return
    outcome, reason = applied.classification.outcome, applied.classification.reason
    held = earlier.value if earlier else "an earlier outcome"
    log.warning(
        "conflicting outcome for generation %s: %s (%s) arrived after %s; not applied",
        applied.generation_id,
        outcome.value,
        reason,
        held,
        extra={"generation_id": applied.generation_id, "inbox_id": inbox_id, "provider": provider},
    )
    alert(
        "classification-conflict",
        f"conflicting outcome {outcome.value} arrived after {held}; not applied",
        provider=provider,
        reason=outcome.value,
        level="warning",
        about={"generation_id": applied.generation_id, "inbox_id": inbox_id},
    )


def apply_kept_result(
    ledger: Ledger, item: InboxItem, *, policy: RefundPolicy, fetch_job: JobFetcher | None
) -> ResultApplied:
    """Apply a result kept in the inbox (``item``), as a worker or the stuck sweep does: its
    failure was known when it arrived (``received_at_ms``), and the row is marked processed
    in the settlement's transaction. Raises what :func:`apply_result` raises."""
    return apply_result(
        ledger,
        provider=item.provider,
        payload=item.payload,
        generation_id=item.generation_id,
        operation=item.operation,
        failure_known_at_ms=item.received_at_ms,
        policy=policy,
        message_id=item.id,
        inbox_id=item.id,
        fetch_job=fetch_job,
    )


def reported_job_id(provider: str, payload: Mapping[str, Any]) -> str | None:
    """The provider job a result names (a thin event's, or the classified payload's); None
    when it names none or cannot be classified."""
    thin = THIN_EVENTS.get(provider)
    job_id = thin(payload) if thin is not None else None
    if job_id is not None:
        return job_id
    try:
        return classify(provider, payload, None).provider_job_id
    except Unclassifiable:
        return None


def _charged(generations: Generations, provider: str, generation_id: str) -> Generation:
    found = generations.generation(generation_id)
    if found is None:
        raise ChargeNotFound(generation_id=generation_id)
    if found.provider != provider:
        raise Unclassifiable(
            "result from another provider than the charge",
            generation_id=generation_id,
            charged=found.provider,
            reported=provider,
        )
    return found


def _same_job(generation: Generation, reported_job_id: str | None) -> None:
    """A result that names a job must name the one charged: a result for job X never
    settles generation Y."""
    charged = generation.provider_job_id
    if reported_job_id is not None and charged and reported_job_id != charged:
        raise ResultForAnotherJob(
            generation_id=generation.generation_id,
            charged_job_id=charged,
            reported_job_id=reported_job_id,
        )


def _find_generation(
    generations: Generations, provider: str, classification: Classification
) -> Generation:
    job_id = classification.provider_job_id
    if job_id is None:
        raise Unclassifiable(
            "no generation_id given and the payload carries no job id", provider=provider
        )
    found = generations.generation_by_job(provider, job_id)
    if found is None:
        raise ChargeNotFound(provider=provider, provider_job_id=job_id)
    return found
