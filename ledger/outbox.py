"""Events out: the transactional outbox of ledger effects, and the event each one makes.

Every ledger entry is also an outbox row, written by a database trigger in the entry's own
transaction (migration 0016): whichever code writes entries (one, a batch, a kind added
later), none is left without its event, and an effect rolled back leaves no event. An
account's rows are numbered (``seq``) in the order their transactions committed; only the
lowest pending one of an account is due (``outbox_due``), so an account's events go out
in order, the next only once the previous was delivered or dead-lettered.

The event is built from the entry, which never changes, so every attempt sends the same
body under the same ``webhook-id``. Its shape is the Standard Webhooks payload convention
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
``{"type": "generation.refunded", "timestamp": "<ISO 8601>", "data": {…}}``.

Each attempt claims its row with a compare-and-set (the attempt count it read, and no
live claim), so two workers never send one row at once; a claim lapses after its lease,
so a worker that died mid-attempt holds nothing for long.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ledger.backends import Database, Row
from ledger.errors import LedgerError

__all__ = [
    "EVENT_TYPES",
    "Attempt",
    "DeadEvent",
    "DueEvent",
    "Outbox",
    "OutboxFigures",
    "entry_cause",
    "event_body",
    "event_type",
    "iso_ms",
    "webhook_id",
]

EVENT_TYPES: Final[tuple[tuple[str, str, str], ...]] = (
    # (entry kind, cause: what the key says caused it, event type)
    ("charge", "generation", "generation.charged"),
    ("refund", "generation", "generation.refunded"),
    ("grant", "pack", "pack.granted"),
    ("grant", "grant", "credits.granted"),
    ("clawback", "refund", "pack.refunded"),
    ("clawback", "dispute", "credits.clawed_back"),
    ("restore", "refund", "credits.restored"),
    ("expire", "expiry", "credits.expired"),
    ("expiry", "expiry", "credits.expired"),
)
"""The one table from a ledger entry to its event type. A kind not listed yet still makes an
event, ``ledger.<kind>`` (never dropped); a test holds every kind the schema allows to a
named type."""

_DISPUTE_PREFIXES = ("dp_", "du_")
"""Stripe dispute ids (``dp_…``; ``du_…`` for some payment methods): a claw-back under one
is a lost chargeback, any other (a refund ``re_…``, ``refunded``, ``at-grant``) a refund."""


def entry_cause(kind: str, key: str) -> str:
    """What caused an entry, read from its idempotency key (``ledger.keys``): ``generation``
    (a charge or refund), ``pack``, ``grant``, ``refund`` or ``dispute`` (a claw-back, or a
    restore), ``expiry``; else the key's first part."""
    prefix, _, rest = key.partition(":")
    if prefix in ("charge", "refund") and kind in ("charge", "refund"):
        return "generation"
    if prefix in ("clawback", "restore"):
        return "dispute" if rest.rpartition(":")[2].startswith(_DISPUTE_PREFIXES) else "refund"
    if kind in ("expire", "expiry"):
        return "expiry"
    return prefix


def event_type(kind: str, key: str) -> str:
    """The event type of an entry of ``kind`` under idempotency ``key`` (:data:`EVENT_TYPES`)."""
    cause = entry_cause(kind, key)
    for listed_kind, listed_cause, name in EVENT_TYPES:
        if (listed_kind, listed_cause) == (kind, cause):
            return name
    return f"ledger.{kind}"


def webhook_id(key: str) -> str:
    """The event's ``webhook-id``: derived from the entry's idempotency key (the identity of
    what caused it), so it is the same at every attempt and in every copy of the ledger;
    hashed because a key may hold characters an HTTP header cannot carry."""
    return "evt_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds (``2026-11-29T21:00:00.123Z``)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def event_body(entry: Row) -> dict[str, Any]:
    """The Standard Webhooks payload of an entry row (with its outbox ``seq``): ``type``,
    ``timestamp`` (when the entry was written) and ``data``: ``account_id``, ``amount``
    (whole credits, negative when taken), ``kind``, ``cause``, ``idempotency_key``,
    ``generation_id``, ``purchase_key``, ``policy_version``, ``reason``, ``sequence`` (the
    account's event number, 1, 2, …: a gap means an event not applied yet),
    ``balance_after`` (the account's balance once this event and every earlier one of the
    account are applied: the sum of their amounts) and the times (``created_at``,
    ``applied_at``, ``failure_known_at``; ISO 8601 UTC)."""
    kind, key = str(entry["kind"]), str(entry["idempotency_key"])
    return {
        "type": event_type(kind, key),
        "timestamp": iso_ms(int(entry["created_at_ms"])),
        "data": {
            "account_id": entry["account_id"],
            "amount": int(entry["amount"]),
            "kind": kind,
            "cause": entry_cause(kind, key),
            "idempotency_key": key,
            "generation_id": entry["generation_id"],
            "purchase_key": entry.get("purchase_key"),
            "policy_version": entry["policy_version"],
            "reason": entry["reason"],
            "sequence": None if entry.get("seq") is None else int(entry["seq"]),
            "balance_after": _whole(entry.get("balance_after")),
            "created_at": iso_ms(int(entry["created_at_ms"])),
            "applied_at": iso_ms(int(entry["applied_at_ms"])),
            "failure_known_at": iso_ms(entry["failure_known_at_ms"]),
        },
    }


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class DueEvent:
    """A claimed outbox row, ready to send: ``body`` is the exact JSON text to sign."""

    outbox_id: int
    account_id: str
    seq: int
    webhook_id: str
    type: str
    body: str
    attempt: int
    first_attempt_at_ms: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one attempt ended (:meth:`Outbox.settle`): ``state`` is ``delivered``, ``retry``
    (``at_ms``: the next attempt) or ``dead`` (``at_ms``: now); ``error`` the reason."""

    event: DueEvent
    state: str
    at_ms: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """An event given up on: its reason is the last attempt's error."""

    outbox_id: int
    webhook_id: str
    type: str
    account_id: str
    seq: int
    amount: int
    idempotency_key: str
    attempts: int
    reason: str
    dead_at_ms: int

    def summary(self) -> dict[str, Any]:
        return {
            "id": f"event:{self.outbox_id}",
            "queue": "events_out",
            "reason": self.reason,
            "webhook_id": self.webhook_id,
            "type": self.type,
            "account_id": self.account_id,
            "attempts": self.attempts,
            "dead_at": iso_ms(self.dead_at_ms),
        }


@dataclass(frozen=True, slots=True)
class OutboxFigures:
    """Counts of outbox rows by state, and the retries made (for ``/metrics``)."""

    pending: int
    delivered: int
    dead: int
    retries: int


class Outbox:
    """The outbox of one ledger database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim_due(self, *, now_ms: int, lease_ms: int, token: str, limit: int) -> list[DueEvent]:
        """Claim up to ``limit`` due events, at most one per account (its lowest pending),
        each for ``lease_ms`` under ``token``. A row another worker claimed first is skipped."""
        with self.db.write() as tx:
            rows = tx.all("outbox_due", now_ms=now_ms, limit=limit)
            claimed: list[DueEvent] = []
            for row in rows:
                won = tx.one(
                    "outbox_claim",
                    id=row["id"],
                    attempts=row["attempts"],
                    token=token,
                    now_ms=now_ms,
                    until_ms=now_ms + lease_ms,
                )
                if won is None:
                    continue
                entry = tx.one("outbox_entry", id=row["id"])
                if entry is None:
                    raise LedgerError("outbox row without its entry", outbox_id=row["id"])
                if entry["balance_after"] is None:  # the first attempt: the account's previous
                    found = tx.one(  # event was delivered or dead-lettered, its figure is known
                        "outbox_set_balance_after", id=row["id"], amount=entry["amount"]
                    )
                    entry = {
                        **entry,
                        "balance_after": None if found is None else found["balance_after"],
                    }
                body = event_body(entry)
                claimed.append(
                    DueEvent(
                        outbox_id=int(row["id"]),
                        account_id=str(row["account_id"]),
                        seq=int(row["seq"]),
                        webhook_id=webhook_id(str(entry["idempotency_key"])),
                        type=str(body["type"]),
                        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
                        attempt=int(won["attempts"]),
                        first_attempt_at_ms=int(won["first_attempt_at_ms"]),
                    )
                )
        return claimed

    def settle(self, attempts: Sequence[Attempt], *, token: str) -> list[bool]:
        """Record how the attempts ended, in one transaction, each only if ``token`` still
        holds its claim (else False: the lease ran out and another worker took the event).
        ``delivered``: done; ``retry``: pending until ``at_ms``; ``dead``: dead-lettered
        at ``at_ms`` (the account's next event becomes due)."""
        queries = {
            "delivered": "outbox_delivered",
            "retry": "outbox_retry",
            "dead": "outbox_give_up",
        }
        with self.db.write() as tx:
            return [
                tx.one(
                    queries[o.state],
                    id=o.event.outbox_id,
                    token=token,
                    now_ms=o.at_ms,
                    next_attempt_at_ms=o.at_ms,
                    error=o.error,
                )
                is not None
                for o in attempts
            ]

    def dead_letters(self) -> list[DeadEvent]:
        """Every dead-lettered event, oldest first."""
        with self.db.read() as tx:
            rows = tx.all("outbox_dead_letters")
        return [
            DeadEvent(
                outbox_id=int(r["id"]),
                webhook_id=webhook_id(str(r["idempotency_key"])),
                type=event_type(str(r["kind"]), str(r["idempotency_key"])),
                account_id=str(r["account_id"]),
                seq=int(r["seq"]),
                amount=int(r["amount"]),
                idempotency_key=str(r["idempotency_key"]),
                attempts=int(r["attempts"]),
                reason=str(r["last_error"] or ""),
                dead_at_ms=int(r["dead_at_ms"]),
            )
            for r in rows
        ]

    def replay(self, outbox_id: int, *, now_ms: int) -> bool:
        """Put a dead-lettered event back to pending, due now, with a fresh retry budget;
        False when it is not dead-lettered. It is its account's lowest pending event again,
        so the account's later events wait for it."""
        with self.db.write() as tx:
            return tx.one("outbox_replay", id=outbox_id, now_ms=now_ms) is not None

    def purge(self, outbox_id: int) -> bool:
        """Never send a dead-lettered event (it stays recorded, ``purged``); False when it is
        not dead-lettered."""
        with self.db.write() as tx:
            return tx.one("outbox_purge", id=outbox_id) is not None

    def figures(self) -> OutboxFigures:
        with self.db.read() as tx:
            rows = tx.all("outbox_figures")
        by_state = {str(r["state"]): int(r["events"]) for r in rows}
        return OutboxFigures(
            pending=by_state.get("pending", 0),
            delivered=by_state.get("delivered", 0),
            dead=by_state.get("dead", 0),
            retries=sum(int(r["retries"]) for r in rows),
        )
