"""The process's refund policy: the file ``REFUNDRY_POLICY`` names (else the shipped
default), with the environment variables of its rules overriding the version in force when
the process starts, and the settings that follow from that version.

| variable | overrides |
| --- | --- |
| ``REFUNDRY_POLICY`` | unset: the shipped default (``handlers/policy_default.toml``) |
| ``REFUNDRY_POLICY_VERSION`` | without a policy file only: the shipped version's name |
| ``REFUNDRY_REFUND_CANCELLED`` | ``cancelled`` in every list of refunded outcomes, or not |
| ``REFUNDRY_REFUND_SLA_MS`` | ``refund_sla_ms`` |
| ``REFUNDRY_DEADLINES`` | ``deadlines``, key by key |
| ``REFUNDRY_PACKS`` | ``packs``, the whole catalog |
| ``UNLANDED_PACK_ACTION`` | ``unlanded_pack_action`` |
| ``REFUNDRY_LANDING_WINDOW_S`` | ``landing_window_s`` |
| ``REFUNDRY_DUPLICATE_WINDOW_S`` | ``duplicate_window_s`` |
| ``REFUNDRY_FRAUD_ACTION`` | ``fraud_action`` |

A version that takes effect later, and every earlier one, keeps its file's rules: the
variables are an operator's override of today's promise, never a rewrite of the past.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from handlers.deadlines import DeadlinePolicy
from handlers.policy_file import key_line, read_policy, shipped_policy
from handlers.policy_rules import PolicyBook, PolicyVersion, Rules
from ledger.clock import now_ms
from ledger.errors import ConfigurationError, PolicyError
from ledger.outcomes import Outcome
from workers.budgets import Budgets
from workers.settings import Settings

__all__ = ["OVERRIDES", "check_budgets", "load_policy", "settings_under"]

OVERRIDES: Final[dict[str, str]] = {
    "REFUNDRY_REFUND_CANCELLED": "refund_cancelled",
    "REFUNDRY_REFUND_SLA_MS": "refund_sla_ms",
    "REFUNDRY_DEADLINES": "deadlines_json",
    "REFUNDRY_PACKS": "packs_json",
    "UNLANDED_PACK_ACTION": "unlanded_action",
    "REFUNDRY_LANDING_WINDOW_S": "landing_window_s",
    "REFUNDRY_DUPLICATE_WINDOW_S": "duplicate_window_s",
    "REFUNDRY_FRAUD_ACTION": "fraud_action",
}
"""Environment variable → the ``Settings`` field it is read into (``workers.settings``)."""


def load_policy(
    env: Mapping[str, str], settings: Settings, *, at_ms: int | None = None
) -> PolicyBook:
    """The policy book of ``env``: ``REFUNDRY_POLICY``'s file, else the shipped default
    (named by ``REFUNDRY_POLICY_VERSION`` when set), with the variables of :data:`OVERRIDES`
    that are set (already read into ``settings``) applied to the version in force at
    ``at_ms`` (default now). Raises ``PolicyError`` for a file that cannot be used and
    ``ConfigurationError`` for ``REFUNDRY_POLICY_VERSION`` beside a policy file (the names
    are the file's)."""
    path = settings.policy_file
    named = (env.get("REFUNDRY_POLICY_VERSION") or "").strip()
    if path and named:
        raise ConfigurationError(
            "a policy file names its versions: unset it", variable="REFUNDRY_POLICY_VERSION"
        )
    book = read_policy(path) if path else shipped_policy()
    if named:
        (only,) = book.versions
        book = book.replace_version(only, replace(only, name=settings.policy_version))
    in_force = book.at(now_ms() if at_ms is None else at_ms)
    set_here = tuple(v for v in OVERRIDES if (env.get(v) or "").strip())
    if not set_here:
        return book
    rules = _overridden(in_force.rules, settings, set_here)
    return book.replace_version(in_force, replace(in_force, rules=rules, overridden=set_here))


def _overridden(rules: Rules, s: Settings, variables: tuple[str, ...]) -> Rules:
    changes: dict[str, Any] = {}
    for variable in variables:
        value = getattr(s, OVERRIDES[variable])
        if variable == "REFUNDRY_REFUND_CANCELLED":
            changes["refund_outcomes"] = _cancelled(rules.refund_outcomes, value)
            changes["outcomes"] = {k: _cancelled(v, value) for k, v in rules.outcomes.items()}
        elif variable == "REFUNDRY_DEADLINES":
            read = DeadlinePolicy.from_json(value).overrides
            env = {k: (d.poll_after_ms // 1000, d.hard_ms // 1000) for k, d in read.items()}
            changes["deadlines"] = {**rules.deadlines, **env}
        elif variable == "REFUNDRY_PACKS":
            changes["packs"] = json.loads(value) if value.strip() else {}
        elif variable == "UNLANDED_PACK_ACTION":
            changes["unlanded_pack_action"] = value
        else:
            changes[OVERRIDES[variable]] = value
    return replace(rules, **changes)


def _cancelled(outcomes: frozenset[Outcome], refunded: bool) -> frozenset[Outcome]:
    return outcomes | {Outcome.CANCELLED} if refunded else outcomes - {Outcome.CANCELLED}


def check_budgets(settings: Settings, book: PolicyBook) -> None:
    """``ConfigurationError`` (``workers.budgets``) when, under any version of ``book``,
    the worst cases of ``settings`` would refund later than that version's promise."""
    for version in book.versions:
        under = settings_under(settings, version)
        try:
            Budgets(under).check(DeadlinePolicy.from_json(under.deadlines_json))
        except ConfigurationError as exc:
            what = "under this policy version the settings can refund later than its promise"
            fields = {k: v for k, v in exc.fields.items() if k != "promise_s"}
            fields["refund_sla_ms"] = version.rules.refund_sla_ms  # 1 ms is not "0 s"
            if version.name not in book.written or "REFUNDRY_REFUND_SLA_MS" in version.overridden:
                raise ConfigurationError(what, policy_version=version.name, **fields) from exc
            raise PolicyError(
                f"{what} (refund_sla_ms, or the deadlines and settings that bound it)",
                file=book.source,
                line=key_line(book, version.name, "refund_sla_ms"),
                key=f"version[{book.written.index(version.name) + 1}].refund_sla_ms",
                policy_version=version.name,
                **fields,
            ) from exc


def settings_under(settings: Settings, version: PolicyVersion) -> Settings:
    """``settings`` with the fields a policy decides taken from ``version`` (the one in
    force): its name on ledger entries, the refund promise, deadlines, packs and the payment
    rules, for every reader of the settings (budgets, the ops page, ``ledger check``)."""
    r = version.rules
    return replace(
        settings,
        policy_version=version.name,
        refund_cancelled=Outcome.CANCELLED in r.refund_outcomes,
        refund_sla_ms=r.refund_sla_ms,
        deadlines_json=_json({k: list(v) for k, v in r.deadlines.items()}),
        packs_json=_json(dict(r.packs)),
        unlanded_action=r.unlanded_pack_action,
        landing_window_s=r.landing_window_s,
        duplicate_window_s=r.duplicate_window_s,
        fraud_action=r.fraud_action,
    )


def _json(table: dict[str, Any]) -> str:
    """A table as its setting's JSON text; empty as unset (the settings' default)."""
    return json.dumps(table) if table else ""
