"""The rules of one refund policy version, and the book of versions that judges a
generation or a purchase by the version in force when it was charged or paid.

A policy file (``handlers.policy_file``) is read into a :class:`PolicyBook`: its versions
ordered by their effective time, each holding every rule (a rule a version leaves out is
the version before's). The book's decision for a moment is the latest version effective at
or before it; a moment before the first version is judged by the first.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from handlers.credit_kinds import CreditKind
from handlers.deadlines import DeadlinePolicy
from handlers.packs import PackCatalog, PaymentPolicy
from ledger.outcomes import Outcome

__all__ = ["REFUNDABLE", "PolicyBook", "PolicyVersion", "Rules", "rfc3339"]

REFUNDABLE: Final = frozenset(
    {Outcome.FAILED, Outcome.EMPTY_SUCCESS, Outcome.MODERATED, Outcome.CANCELLED}
)
"""The terminal outcomes a policy may refund: a success keeps its credits, whatever a file
says, and a pending generation is not terminal."""


@dataclass(frozen=True, slots=True)
class Rules:
    """Every rule of one version. Units: milliseconds (``_ms``), whole seconds (``_s``),
    credits (whole numbers)."""

    refund_outcomes: frozenset[Outcome]
    """The outcomes refunded unless ``outcomes`` says otherwise for the generation."""
    outcomes: Mapping[str, frozenset[Outcome]]
    """``provider:operation`` or ``operation`` → the outcomes refunded there."""
    refund_sla_ms: int
    deadlines: Mapping[str, tuple[int, int]]
    """``provider:operation`` or ``operation`` → ``(poll_after_s, hard_s)``."""
    packs: Mapping[str, int]
    """Price id → credits of one unit."""
    landing_window_s: int
    unlanded_pack_action: str
    duplicate_window_s: int
    fraud_action: str
    manual_refunds: Mapping[str, Any]
    """``window_days`` (whole days) and ``max_used_share`` (a ``Decimal`` from 0 to 1): when a
    refund a customer asks for qualifies (``handlers.manual_refunds``)."""
    charge_mode: str
    """``debit`` or ``hold``: how a generation charged under this version is charged."""
    credit_kinds: Mapping[str, CreditKind]
    """Credit kind → its expiry rule (``handlers.credit_kinds``)."""

    def refunded_outcomes(self, provider: str, operation: str) -> frozenset[Outcome]:
        """The outcomes refunded for ``operation`` at ``provider``: the most specific
        override (``provider:operation``, then ``operation``), else ``refund_outcomes``."""
        found = self.outcomes.get(f"{provider}:{operation}") or self.outcomes.get(operation)
        return self.refund_outcomes if found is None else found

    def deciding_rule(self, provider: str, operation: str) -> str:
        """The policy key that says which outcomes of ``operation`` at ``provider`` are
        refunded: ``outcomes.<provider:operation>``, ``outcomes.<operation>`` or
        ``refund_outcomes`` (the lookup of :meth:`refunded_outcomes`)."""
        for key in (f"{provider}:{operation}", operation):
            if self.outcomes.get(key) is not None:
                return f"outcomes.{key}"
        return "refund_outcomes"

    def refunds(self, provider: str, operation: str, outcome: Outcome) -> bool:
        """Whether a terminal ``outcome`` of ``operation`` at ``provider`` is refunded."""
        return outcome in self.refunded_outcomes(provider, operation)

    def deadline_policy(self) -> DeadlinePolicy:
        """The stuck-generation deadlines (``handlers.deadlines``) of this version."""
        return DeadlinePolicy.from_json(json.dumps({k: list(v) for k, v in self.deadlines.items()}))

    def catalog(self) -> PackCatalog:
        """The pack catalog (``handlers.packs``) of this version."""
        return PackCatalog(dict(self.packs))

    def payment_policy(self) -> PaymentPolicy:
        """Landing window, unlanded action, duplicate window and fraud action."""
        return PaymentPolicy(
            landing_window_ms=self.landing_window_s * 1000,
            unlanded_action=self.unlanded_pack_action,
            duplicate_window_ms=self.duplicate_window_s * 1000,
            fraud_action=self.fraud_action,
        )

    def as_json(self) -> dict[str, Any]:
        """The rules as plain JSON values (``refundry policy show --json``)."""
        return {
            "refund_outcomes": sorted(o.value for o in self.refund_outcomes),
            "outcomes": {k: sorted(o.value for o in v) for k, v in sorted(self.outcomes.items())},
            "refund_sla_ms": self.refund_sla_ms,
            "deadlines": {k: list(v) for k, v in sorted(self.deadlines.items())},
            "packs": dict(sorted(self.packs.items())),
            "landing_window_s": self.landing_window_s,
            "unlanded_pack_action": self.unlanded_pack_action,
            "duplicate_window_s": self.duplicate_window_s,
            "fraud_action": self.fraud_action,
            "manual_refunds": {
                k: float(v) if isinstance(v, Decimal) else v
                for k, v in sorted(self.manual_refunds.items())
            },
            "charge_mode": self.charge_mode,
            "credit_kinds": {k: v.as_json() for k, v in sorted(self.credit_kinds.items())},
        }


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One ``[[version]]``: its ``name`` (written on every ledger entry decided under it),
    ``effective_ms`` (ms since the epoch, UTC) and its whole :class:`Rules`."""

    name: str
    effective_ms: int
    rules: Rules
    overridden: tuple[str, ...] = ()
    """The environment variables that changed this version's rules (the version in force
    when the process started only)."""

    @property
    def effective(self) -> str:
        """``effective`` in RFC 3339, UTC."""
        return rfc3339(self.effective_ms)


def rfc3339(at_ms: int) -> str:
    """``at_ms`` (ms since the epoch) as an RFC 3339 date-time in UTC (``…Z``)."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PolicyBook:
    """Every version of a policy, ordered by ``effective_ms`` (no two alike), and where they
    were read from (``source``: a file path, or ``shipped default``)."""

    versions: tuple[PolicyVersion, ...]
    source: str
    written: tuple[str, ...] = field(default=(), compare=False)
    """The versions' names in the order the file wrote them (empty: not read from a file)."""
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("a policy book holds at least one version")
        object.__setattr__(self, "_starts", tuple(v.effective_ms for v in self.versions))

    def at(self, at_ms: int) -> PolicyVersion:
        """The version in force at ``at_ms`` (ms since the epoch): the latest effective at
        or before it; the first version for any earlier moment."""
        index = bisect.bisect_right(self._starts, at_ms) - 1
        return self.versions[max(index, 0)]

    def back_dated(self) -> list[tuple[str, str]]:
        """Each version written after one that takes effect later than it, as ``(name, the
        name written before it)``: a version appended with an effective time in the past
        changes the version in force for moments already past (a generation already
        charged keeps the version its charge recorded)."""
        found: list[tuple[str, str]] = []
        latest: PolicyVersion | None = None
        for name in self.written:
            version = self.named(name)
            if version is None:
                continue
            if latest is not None and version.effective_ms <= latest.effective_ms:
                found.append((version.name, latest.name))
            elif latest is None or version.effective_ms > latest.effective_ms:
                latest = version
        return found

    def named(self, name: str) -> PolicyVersion | None:
        """The version called ``name`` (the one a ledger entry records), None when this
        book has none of that name."""
        return next((v for v in self.versions if v.name == name), None)

    def replace_version(self, old: PolicyVersion, new: PolicyVersion) -> PolicyBook:
        """This book with ``old`` replaced by ``new`` (same effective time)."""
        versions = tuple(new if v is old else v for v in self.versions)
        return PolicyBook(versions, self.source, self.written)
