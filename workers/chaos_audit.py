"""The audit at the end of ``refundry chaos``: the plan's truth against the ledger.

Read with the chaos run's own SQL over a connection of its own (parameters only), never with
the ledger's named queries, which are what is under test; then ``refundry ledger check``'s
invariants (``ledger.audit``) on top.

- ``lost``: a refundable generation not refunded, a paid pack not granted, an event still
  pending in the inbox, a broken payload that did not end as a dead letter;
- ``doubled``: a generation refunded twice, a pack granted twice or clawed back past its
  credits (a pack refunded or disputed at Stripe nets zero: granted and clawed back, or
  never granted);
- ``minted``: a successful generation refunded, a refund without a charge, a balance that
  is not the sum of its entries;
- ``unaccounted_dead_letters``: a dead letter the plan did not ask for;
- ``sla_breaches``: a refund later than ``REFUNDRY_REFUND_SLA_MS``;
- ``secrets_leaked``: a signing secret or API key of the run written in clear in a log
  file, a dead letter or the inbox.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ledger import audit
from workers import runtime
from workers.chaos_drive import Counters
from workers.chaos_plan import REFUNDABLE, Plan
from workers.chaos_stack import PACK_CREDITS, SECRETS

__all__ = ["Findings", "audit_run", "progress"]

_OUTCOMES = "SELECT generation_id, outcome FROM generations WHERE generation_id LIKE %s"
_REFUNDS = (
    "SELECT generation_id, count(*) FROM entries WHERE kind = 'refund' "
    "AND generation_id LIKE %s GROUP BY generation_id"
)
_PACKS = (
    "SELECT purchase_key, kind, count(*), sum(amount) FROM entries "
    "WHERE purchase_key IS NOT NULL GROUP BY purchase_key, kind"
)
_UNSETTLED = "SELECT id, payload, state FROM inbox WHERE state <> 'processed'"
_OPEN_DEAD = "SELECT message_id FROM dead_letters WHERE resolved_at_ms IS NULL"
_KEPT_TEXT = (
    "SELECT reason || ' ' || message FROM dead_letters UNION ALL "
    "SELECT payload || ' ' || coalesce(dead_reason, '') FROM inbox WHERE state <> 'processed'"
)
_PROGRESS = (
    "SELECT (SELECT count(*) FROM generations WHERE generation_id LIKE %s "
    "AND outcome IS NOT NULL), (SELECT count(*) FROM inbox WHERE state = 'pending')"
)


def progress(run: str) -> tuple[int, int]:
    """(generations of the run with an outcome, inbox rows pending); (-1, -1) while the
    database cannot be reached."""
    try:
        ((done, pending),) = _rows(runtime.settings().database_url, _PROGRESS, f"chaos-{run}-%")
    except psycopg.OperationalError:
        return -1, -1
    return int(done), int(pending)


@dataclass
class Findings:
    lost: int = 0
    doubled: int = 0
    minted: int = 0
    misjudged: int = 0
    claw_backs_missing: int = 0
    unaccounted_dead_letters: int = 0
    dead_letters: int = 0
    sla_breaches: int = 0
    sla_max_s: float = 0.0
    refunds: int = 0
    ledger_violations: int = 0
    secrets_leaked: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(what)

    @property
    def violations(self) -> int:
        return (
            self.lost
            + self.doubled
            + self.minted
            + self.misjudged
            + self.claw_backs_missing
            + self.unaccounted_dead_letters
            + self.sla_breaches
            + self.ledger_violations
            + self.secrets_leaked
        )


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, options="-c search_path=refundry") as conn:
        return conn.execute(sql.encode(), params).fetchall()


def audit_run(
    plan: Plan, counters: Counters, *, run: str, since_ms: int, logs: list[Path]
) -> Findings:
    """The findings of one run; ``since_ms``: when it began (refunds counted from then);
    ``logs``: the log files of its processes."""
    url = runtime.settings().database_url
    found = Findings()
    like = f"chaos-{run}-%"
    outcomes = dict(_rows(url, _OUTCOMES, like))
    refunds = {g: int(n) for g, n in _rows(url, _REFUNDS, like)}
    found.refunds = sum(refunds.values())
    for gen in plan.generations:
        n, outcome = refunds.get(gen.gen_id, 0), outcomes.get(gen.gen_id)
        if gen.truth in REFUNDABLE and n == 0:
            found.lost += 1
            found.note(f"lost: {gen.gen_id} ({gen.truth}) not refunded, outcome {outcome}")
        if n > 1:
            found.doubled += n - 1
            found.note(f"doubled: {gen.gen_id} refunded {n} times")
        if gen.truth == "succeeded" and n:
            found.minted += n
            found.note(f"minted: {gen.gen_id} succeeded and refunded")
        if gen.truth != "stuck" and outcome != gen.truth:
            found.misjudged += 1
            found.note(f"misjudged: {gen.gen_id} is {gen.truth}, recorded {outcome}")
    _audit_packs(url, counters, found)
    _audit_inbox(url, plan, found)
    _audit_secrets(url, logs, found)
    settings = runtime.settings()
    latencies = runtime.ledger().refund_latencies_ms(since_ms=since_ms)
    found.sla_max_s = round(max(latencies, default=0) / 1000, 3)
    found.sla_breaches = sum(1 for ms in latencies if ms > settings.refund_sla_ms)
    violations = audit(runtime.ledger().db, landing_window_ms=settings.landing_window_s * 1000)
    found.ledger_violations = len(violations)
    for v in violations:
        found.note(str(v))
        if v.invariant in (2, 3, 5):
            found.minted += 1
    return found


def _audit_packs(url: str, counters: Counters, found: Findings) -> None:
    """Every pack granted once; a pack refunded or disputed at Stripe clawed back in full."""
    kinds: dict[str, Counter[str]] = {}
    sums: dict[str, Counter[str]] = {}
    for key, kind, n, total in _rows(url, _PACKS):
        kinds.setdefault(key, Counter())[kind] = int(n)
        sums.setdefault(key, Counter())[kind] = int(total)
    for intent, purchase in counters.purchases.items():
        grants = kinds.get(intent, Counter())["grant"]
        net = sum(sums.get(intent, Counter()).values())
        if grants > 1:
            found.doubled += grants - 1
            found.note(f"doubled: pack {intent} granted {grants} times")
        elif purchase.then:
            # refunded or lost at Stripe: granted then clawed back in full, or never granted
            # (Stripe already said the money went back when the pack was confirmed)
            if net > 0:
                found.claw_backs_missing += 1
                found.note(f"claw-back missing: pack {intent} {purchase.then}, net {net}")
            elif net < 0:
                found.doubled += 1
                found.note(f"doubled: pack {intent} clawed back past its grant (net {net})")
        elif grants == 0:
            found.lost += 1
            found.note(f"lost: pack {intent} ({purchase.deliver}) never granted")
        elif net != PACK_CREDITS:
            found.lost += 1
            found.note(f"lost: pack {intent} nets {net} credits, not {PACK_CREDITS}")


def _audit_inbox(url: str, plan: Plan, found: Findings) -> None:
    """Nothing pending; every dead letter one the plan asked for, and each of those there."""
    wanted = {d.gen.gen_id for d in plan.bad}
    dead_ids: set[str] = set()
    seen_bad: set[str] = set()
    for inbox_id, payload, state in _rows(url, _UNSETTLED):
        body = json.loads(payload) if isinstance(payload, str) else payload
        if state == "pending":
            found.lost += 1
            found.note(f"lost: inbox {inbox_id} still pending")
            continue
        bad = body.get("chaos_bad") if isinstance(body, dict) else None
        if bad in wanted:
            seen_bad.add(str(bad))
            dead_ids.add(str(inbox_id))
        else:
            found.unaccounted_dead_letters += 1
            found.note(f"unaccounted dead inbox row {inbox_id}")
    missing = wanted - seen_bad
    found.lost += len(missing)
    for gen_id in sorted(missing)[:5]:
        found.note(f"lost: the broken payload of {gen_id} is no dead letter")
    open_dead = [str(m) for (m,) in _rows(url, _OPEN_DEAD)]
    found.dead_letters = len(open_dead)
    for message_id in open_dead:
        if message_id not in dead_ids:
            found.unaccounted_dead_letters += 1
            found.note(f"unaccounted dead letter {message_id}")


def _audit_secrets(url: str, logs: list[Path], found: Findings) -> None:
    """No secret of the run in clear in a log file, a dead letter or an unsettled event."""
    texts = [(str(path), path.read_text(errors="replace")) for path in logs if path.exists()]
    texts += [("ledger", str(text)) for (text,) in _rows(url, _KEPT_TEXT)]
    for where, text in texts:
        for secret in SECRETS:
            if secret in text:
                found.secrets_leaked += 1
                found.note(f"secret in clear in {where}")
