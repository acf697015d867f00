"""What Refundry decided about one generation or one purchase, and why (``refundry
explain``): the decisions, each with the policy version and rule it was made under and
when, and the ledger entries they wrote. Built from what the ledger recorded; the policy
book only names the version in force at the charge or payment, for a decision recorded
before versions and rules were (migration 0018). Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from handlers.policy_rules import PolicyBook, rfc3339
from ledger.errors import NothingKnownById
from ledger.history import Decided, EntryRow, History

__all__ = ["Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """``kind``: ``generation``, ``purchase`` or ``invoice``; ``facts``: what it is (name →
    value; times in RFC 3339); ``judged_by``: the version in force at its charge or payment
    in the policy book now; ``decisions`` and ``entries`` in the order they were made."""

    kind: str
    id: str
    facts: dict[str, Any]
    judged_by: str | None
    decisions: list[Decided] = field(default_factory=list)
    entries: list[EntryRow] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """One line: what was decided last, under which version and rule, when."""
        if not self.decisions:
            return "nothing decided yet"
        d = self.decisions[-1] if self.kind != "generation" else self.decisions[0]
        under = d.policy_version or "(version not recorded)"
        rule = f", rule {d.rule}" if d.rule else ""
        return f"{d.decision} ({d.reason}) under {under}{rule}, at {rfc3339(d.at_ms)}"

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (``refundry explain --json``)."""
        return {
            "kind": self.kind,
            "id": self.id,
            "facts": self.facts,
            "judged_by": self.judged_by,
            "verdict": self.verdict,
            "decisions": [
                {
                    "decision": d.decision,
                    "reason": d.reason,
                    "at": rfc3339(d.at_ms),
                    "policy_version": d.policy_version,
                    "rule": d.rule,
                }
                for d in self.decisions
            ],
            "entries": [
                {
                    "key": e.idempotency_key,
                    "kind": e.kind,
                    "amount": e.amount,
                    "account_id": e.account_id,
                    "reason": e.reason,
                    "policy_version": e.policy_version,
                    "created_at": rfc3339(e.created_at_ms),
                    "applied_at": rfc3339(e.applied_at_ms),
                    "failure_known_at": (
                        None if e.failure_known_at_ms is None else rfc3339(e.failure_known_at_ms)
                    ),
                }
                for e in self.entries
            ],
        }


def explain(history: History, book: PolicyBook, id: str) -> Explanation:
    """The explanation of ``id``: a generation id, else a purchase (PaymentIntent, Checkout
    Session or charge id), else an invoice with decisions recorded. Raises
    ``NothingKnownById`` when the ledger knows none of them."""
    found = history.generation(id)
    if found is not None:
        gen, decided = found
        facts: dict[str, Any] = {
            "account_id": gen.account_id,
            "provider": gen.provider,
            "operation": gen.operation,
            "provider_job_id": gen.provider_job_id,
            "credits": gen.credits,
            "charged_at": rfc3339(gen.charged_at_ms),
            "outcome": None if gen.outcome is None else gen.outcome.value,
        }
        if gen.outcome is None and gen.deadline_at_ms is not None:
            facts["deadline_at"] = rfc3339(gen.deadline_at_ms)
        entries = history.generation_entries(id)
        decisions = history.conflicts(id)
        if decided is not None:  # the first terminal outcome: refunded, or kept
            refunded = any(e.kind == "refund" for e in entries)
            what = replace(
                decided,
                decision="refund" if refunded else "keep",
                reason=f"{decided.decision}: {decided.reason}",
            )
            decisions.insert(0, what)
        charged = [e.policy_version for e in entries if e.kind == "charge"]
        judged_by = charged[0] if charged else book.at(gen.charged_at_ms).name  # its record
        return Explanation("generation", id, facts, judged_by, decisions, entries)
    payment = history.purchase(id)
    if payment is not None:
        key = payment.purchase_key
        paid = payment.paid_at_ms
        facts = {
            "purchase": key,
            "state": payment.state,
            "account_id": payment.account_id,
            "price_id": payment.price_id,
            "credits": payment.credits,
            "amount": payment.amount,
            "currency": payment.currency,
            "session_id": payment.session_id,
            "charge_id": payment.charge_id,
            "paid_at": None if paid is None else rfc3339(paid),
            "refunded_amount": payment.refunded_amount,
            "duplicate_of": payment.duplicate_of,
        }
        judged = None if paid is None else book.at(paid).name
        return Explanation(
            "purchase", key, facts, judged, history.decisions(key), history.purchase_entries(key)
        )
    decisions = history.decisions(id)
    if decisions:
        return Explanation("invoice", id, {}, None, decisions, [])
    raise NothingKnownById(id=id)
