"""Reconciliation: the payment provider's own objects compared with the ledger.

Events can be lost or never created, so the sweep reads the provider's objects: the Checkout
Sessions and PaymentIntents made in the window and those its events say were paid in it,
each stamped with when it was paid (``handlers.paid_purchases``); it merges what they say
into the ledger, reads again the refunds still pending at Stripe, and settles every purchase
paid longer ago than the landing window that has not landed, once what Stripe already gave
back for it (refunds, lost disputes) is recorded (``handlers.provider_reversals``):
``complete`` grants it now, ``refund`` gives the money back, and an open chargeback waits
until it closes; once closed, Stripe refuses any refund of the charge, so it is completed (as
is a purchase paid again after a refund of it failed). A purchase whose pack cannot be known
(a price outside the catalog: its refusal is recorded as its ``refused`` decision) is
refunded under ``refund`` and alerted under ``complete``, for a person to decide. Purchases
stuck ``refunding`` are carried on (``handlers.purchase_refunds``). Two runs at once are
safe: every step is keyed and locked in the ledger, and the provider's idempotency key
makes a repeated refund call return the first refund.

Every purchase is decided by one function, :func:`decide`, from its :class:`Facts`; the real
run gathers them while it records what Stripe says (``_Settle``), a dry run gathers the same
facts from the same API calls writing nothing (``_Preview``) and only reports. Each decision
is reported once per run, an alert once per cause (recorded as the purchase's decision), and
at most one alert per purchase per run; a purchase the provider failed for is left
undecided, listed in :attr:`Reconciliation.undecided` (``refundry reconcile`` exits 5).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Protocol

from handlers.packs import PackCatalog, PackUnknown, PaymentPolicy
from handlers.paid_purchases import PaidSource, Purchase, paid_purchases
from handlers.payments import PaymentGateway, land
from handlers.policy_rules import PolicyBook
from handlers.provider_reversals import (
    DisputeSource,
    read_reversals,
    sync_pending_refunds,
    sync_reversals,
)
from handlers.purchase_refunds import refund_purchase
from handlers.purchases import observe, preview, read_purchase, succeeded_intent
from ledger import Ledger, now_ms
from ledger.decision_rules import completed
from ledger.errors import RefundryError
from ledger.payments import Payment
from providers.stripe import purchase_key

__all__ = [
    "Decision",
    "Facts",
    "ReconcileSource",
    "Reconciliation",
    "decide",
    "judged_by",
    "reconcile",
]

log = logging.getLogger(__name__)


class ReconcileSource(PaymentGateway, PaidSource, DisputeSource, Protocol):
    """What reconciliation needs of the payment provider's API (``providers.stripe_api``)."""


@dataclass
class Reconciliation:
    """One run's report: ``seen`` paid objects listed at the provider, the ``decisions``
    (``{"purchase", "action", "why"}``) and the purchases left ``undecided`` because the
    provider could not be reached for them (the run may succeed later)."""

    seen: int = 0
    decisions: list[dict[str, str]] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    alerted: set[str] = field(default_factory=set)

    def decide(self, purchase_key: str, action: str, why: str) -> bool:
        """Report one decision, once per run (the same purchase can be listed twice: its
        session and its PaymentIntent); False when it was reported already."""
        decision = {"purchase": purchase_key, "action": action, "why": why}
        if decision in self.decisions:
            return False
        self.decisions.append(decision)
        return True

    def failed(self, purchase_key: str, exc: RefundryError) -> bool:
        """A purchase reconciliation could not decide: one alert per purchase per run, and
        listed as undecided when the cause is transient (an outage). False when this
        purchase was alerted already in this run."""
        if not exc.permanent and purchase_key not in self.undecided:
            self.undecided.append(purchase_key)
        if purchase_key in self.alerted:
            return False
        self.alerted.add(purchase_key)
        self.decide(purchase_key, "alert", exc.reason)
        log.error("reconcile: purchase %s: %s", purchase_key, exc.reason)
        return True


@dataclass(frozen=True, slots=True)
class Facts:
    """What one unlanded purchase is decided from: ``payment`` as the ledger holds it once
    what the provider says is merged (refunds and lost disputes counted in
    ``refunded_amount``), the chargeback still open on it, and why its pack cannot be known
    (``PackUnknown``'s reason), each ``None`` when there is none; ``listed_state``: the state
    the purchase was listed in, before anything was read (``None``: ``payment``'s). Every
    change the decision makes is a compare-and-set on it: a pack that lands while the
    provider is read is kept."""

    payment: Payment
    open_dispute: str | None = None
    pack_refused: str | None = None
    listed_state: str | None = None
    closed_chargeback: str | None = None
    """A chargeback closed on its charge: Stripe refuses any refund of it."""
    reopened: bool = False
    """Paid again after a refund of it failed (``Payments.reopened``)."""

    @property
    def decided_from(self) -> str:
        """The state every change is a compare-and-set on."""
        return self.listed_state or self.payment.state


@dataclass(frozen=True, slots=True)
class Decision:
    """``action``: ``refund``, ``refunded_at_provider``, ``wait``, ``alert`` or ``complete``;
    ``why``: the reason recorded and reported."""

    action: str
    why: str


def decide(facts: Facts, policy: PaymentPolicy) -> Decision:
    """The one decision on an unlanded purchase, for the real run and the dry run alike."""
    p = facts.payment
    if p.state == "refunding":  # a refund call that never confirmed: same key again
        return Decision("refund", "refund started but never confirmed")
    if p.amount and p.refunded_amount >= p.amount:
        return Decision("refunded_at_provider", "money already given back")
    if facts.open_dispute is not None:
        return Decision("wait", f"chargeback {facts.open_dispute} open: decided when it closes")
    action = policy.unlanded_action
    if p.purchase_key == p.session_id:  # no_payment_required: no money to give back
        action = "complete"
    if facts.reopened:
        action = "complete"  # paid again after a refund failed: it lands, as its events do
    if facts.closed_chargeback is not None:
        # Stripe refuses any refund of a charge charged back (``charge_disputed``,
        # https://docs.stripe.com/error-codes#charge-disputed): the closed dispute decided
        # where the money is, and what stayed with the merchant is the customer's pack.
        action = "complete"
    if action == "complete" and facts.pack_refused is not None:
        why = f"paid but its pack cannot be known ({facts.pack_refused}): a person decides"
        return Decision("alert", why)
    if action == "complete" and (p.account_id is None or p.credits is None):
        return Decision("alert", "paid but the account or the pack is unknown: cannot complete")
    return Decision(action, f"not landed within {policy.landing_window_ms // 1000} s of payment")


def reconcile(
    ledger: Ledger,
    source: ReconcileSource,
    *,
    catalog: PackCatalog,
    policy: PaymentPolicy,
    since_s: int,
    dry_run: bool = False,
    at_ms: int | None = None,
    book: PolicyBook | None = None,
) -> Reconciliation:
    """Settle every purchase paid before ``at_ms`` (ms since the epoch, default now) minus the
    landing window that has not landed, having read at the provider every purchase made or
    paid since ``since_s`` (seconds since the epoch). ``dry_run``: the same reads and
    decisions, nothing written to the ledger and nothing changed at the provider. Raises the
    provider's errors only when the paid purchases cannot be listed at all.

    With a policy ``book``, each purchase is judged (landing window, unlanded action,
    duplicate window) by the version in force when it was paid, whose name its entries
    record; without one, by ``policy``."""
    now = now_ms() if at_ms is None else at_ms
    report = Reconciliation()
    listed = paid_purchases(
        source, since_s, paid_time_known=lambda key: _paid_time_known(ledger, key)
    )
    report.seen = len(listed)
    windows = [policy.landing_window_ms]
    windows += [v.rules.landing_window_s * 1000 for v in book.versions] if book else []
    paid_before = now - min(windows)
    run: _Run = (
        _Preview(ledger, source, catalog, policy, book)
        if dry_run
        else _Settle(ledger, source, catalog, policy, book)
    )
    for event in listed:
        try:
            run.take(event)
        except RefundryError as exc:  # an outage, a refusal: the rest go on
            report.failed(purchase_key(event) or event.event_id, exc)
    for p in run.unlanded(paid_before):
        if p.purchase_key in report.alerted:
            continue  # could not be read in this run: undecided, alerted once
        then, _ = judged_by(p, policy, book)
        if (p.paid_at_ms or 0) >= now - then.landing_window_ms:
            continue  # its own version's window has not run out yet
        try:
            facts = run.facts(p)
            run.apply(facts, decide(facts, then), report)
        except RefundryError as exc:  # one purchase the provider refuses must not stop the rest
            if report.failed(p.purchase_key, exc) and not dry_run:
                why = f"reconcile failed: {exc.reason}"
                ledger.payments.note(p.purchase_key, "alert", why, once=True)
    return report


def judged_by(
    p: Payment, policy: PaymentPolicy, book: PolicyBook | None
) -> tuple[PaymentPolicy, str | None]:
    """The payment rules ``p`` is judged by, and the name of their policy version: those of
    the version of ``book`` in force when it was paid (``paid_at_ms``), else ``policy``
    (no name: the ledger's default version)."""
    if book is None or p.paid_at_ms is None:
        return policy, None
    version = book.at(p.paid_at_ms)
    return version.rules.payment_policy(), version.name


def _paid_time_known(ledger: Ledger, purchase_key: str) -> bool:
    known = ledger.payments.get(purchase_key)
    return known is not None and known.paid_at_ms is not None


def _refusal(ledger: Ledger, purchase_key: str) -> str | None:
    """The reason recorded when the purchase's pack was refused (its last ``refused``)."""
    refused = [d for d in ledger.payments.decisions(purchase_key) if d["decision"] == "refused"]
    return str(refused[-1]["reason"]) if refused else None


def _incomplete(p: Payment) -> bool:
    """Paid, but its account or its pack is not known; keyed by a PaymentIntent to read."""
    return (p.account_id is None or p.credits is None) and p.purchase_key != p.session_id


class _Run(Protocol):
    def take(self, event: Purchase) -> None: ...

    def unlanded(self, paid_before_ms: int) -> list[Payment]: ...

    def facts(self, p: Payment) -> Facts: ...

    def apply(self, facts: Facts, decision: Decision, report: Reconciliation) -> None: ...


@dataclass
class _Settle:
    """The real run: what the provider says is recorded, then each decision is carried out."""

    ledger: Ledger
    source: ReconcileSource
    catalog: PackCatalog
    policy: PaymentPolicy
    book: PolicyBook | None = None

    def __post_init__(self) -> None:
        sync_pending_refunds(self.ledger, self.source)

    def take(self, event: Purchase) -> None:
        with suppress(PackUnknown):  # recorded with its refusal: settled below by policy
            observe(self.ledger, event, self.catalog, self.source)

    def unlanded(self, paid_before_ms: int) -> list[Payment]:
        return self.ledger.payments.unlanded(paid_before_ms=paid_before_ms)

    def facts(self, p: Payment) -> Facts:
        if p.state != "paid":
            return Facts(p)
        listed = p.state
        synced = sync_reversals(self.ledger, self.source, p)
        p, refused = synced.payment, None
        if _incomplete(p):  # its session's event was lost, or read before its pack could be
            try:
                p = read_purchase(self.ledger, p.purchase_key, self.catalog, self.source) or p
            except PackUnknown as exc:
                refused = exc.reason
                p = self.ledger.payments.get(p.purchase_key) or p
        if p.credits is None and refused is None:
            refused = _refusal(self.ledger, p.purchase_key)
        return Facts(
            p,
            synced.open_dispute,
            refused,
            listed_state=listed,
            closed_chargeback=synced.closed_chargeback,
            reopened=self.ledger.payments.reopened(p.purchase_key),
        )

    def apply(self, facts: Facts, decision: Decision, report: Reconciliation) -> None:
        p, (action, why) = facts.payment, (decision.action, decision.why)
        policy, version = judged_by(p, self.policy, self.book)
        ledger = self.ledger if version is None else self.ledger.under(version)
        if action == "alert":  # once per cause, recorded: not every run
            if ledger.payments.note(p.purchase_key, "alert", why, once=True):
                report.decide(p.purchase_key, action, why)
                log.error("reconcile: purchase %s: %s", p.purchase_key, why)
            return
        report.decide(p.purchase_key, action, why)
        payments = ledger.payments
        if action == "refunded_at_provider":
            payments.mark_refunded_at_provider(
                p.purchase_key,
                reason="all its money went back at the provider (refunds, lost disputes)",
                expected_state=facts.decided_from,
            )
        elif action == "wait":
            payments.note(p.purchase_key, "wait", why, once=True)
        elif action == "complete":
            by_rule = policy.unlanded_action == "complete"  # else forced: see decide()
            land(ledger, p, gateway=self.source, policy=policy, why=completed(why, by_rule))
        elif p.state == "refunding":
            reason = p.refund_reason or "retry"
            refund_purchase(
                ledger, p, reason=reason, gateway=self.source, expected_state="refunding"
            )
        elif not refund_purchase(
            ledger,
            p,
            reason="unlanded_pack",
            gateway=self.source,
            expected_state=facts.decided_from,
        ):
            why = f"no longer {facts.decided_from} when it was to be refunded"
            report.decide(p.purchase_key, "kept", why)


@dataclass
class _Preview:
    """The dry run: the same reads as the real run, merged in memory; nothing is written and
    nothing is asked of the provider that changes anything."""

    ledger: Ledger
    source: ReconcileSource
    catalog: PackCatalog
    policy: PaymentPolicy
    book: PolicyBook | None = None
    merged: dict[str, Payment] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    def take(self, event: Purchase) -> None:
        seen = preview(self.ledger, event, self.catalog, self.source)
        if seen is None:
            return
        key = seen.purchase_key
        self.merged[key] = seen.over(self.merged.get(key) or self.ledger.payments.get(key))
        if seen.refused is not None:
            self.refused[key] = seen.refused.reason

    def unlanded(self, paid_before_ms: int) -> list[Payment]:
        found = {
            p.purchase_key: p for p in self.ledger.payments.unlanded(paid_before_ms=paid_before_ms)
        }
        for key, p in self.merged.items():
            due = p.paid_at_ms is not None and p.paid_at_ms < paid_before_ms
            if p.state in ("paid", "refunding") and due:
                found[key] = p
        return sorted(found.values(), key=lambda p: (p.paid_at_ms or 0, p.purchase_key))

    def facts(self, p: Payment) -> Facts:
        if p.state != "paid":
            return Facts(p)
        at = read_reversals(self.source, p)
        p = replace(p, refunded_amount=max(p.refunded_amount, at.given_back))
        refused = None
        if _incomplete(p):
            event = succeeded_intent(self.source, p.purchase_key)
            seen = preview(self.ledger, event, self.catalog, self.source) if event else None
            if seen is not None:
                p = seen.over(p)
                refused = seen.refused.reason if seen.refused else None
        if p.credits is None and refused is None:
            refused = self.refused.get(p.purchase_key) or _refusal(self.ledger, p.purchase_key)
        return Facts(
            p,
            at.open_dispute,
            refused,
            closed_chargeback=at.closed_chargeback,
            reopened=self.ledger.payments.reopened(p.purchase_key),
        )

    def apply(self, facts: Facts, decision: Decision, report: Reconciliation) -> None:
        key = facts.payment.purchase_key
        recorded = {
            (str(d["decision"]), str(d["reason"])) for d in self.ledger.payments.decisions(key)
        }
        if decision.action == "alert" and ("alert", decision.why) in recorded:
            return  # alerted already: the real run would not alert again
        report.decide(key, decision.action, decision.why)
