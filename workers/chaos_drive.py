"""How ``refundry chaos`` sends its plan: results through ``workers.client`` or as signed
webhooks to ``refundry web``, packs bought at the fake Stripe and their events posted signed,
faults struck between two deliveries. A delivery is sent again, as a provider or the platform
would, until it is kept: while PostgreSQL is down the client is refused and the ingress
answers 503.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import stripe
from standardwebhooks import Webhook

from ledger.errors import LedgerUnavailable
from workers import client
from workers.chaos_plan import Charge, Delivery, Fault, Purchase
from workers.chaos_stack import (
    KLING_SECRET,
    PACK_AMOUNT,
    PACK_PRICE,
    STRIPE_SECRET,
    Stack,
)

__all__ = ["Counters", "Driver"]

_KEEP_TIMEOUT_S = 300.0
"""How long one delivery is retried before the run gives up (PostgreSQL never came back)."""
_REDIS_DOWN_DELIVERIES = 40
"""Deliveries sent while Redis is down (kept in the inbox only; the inbox sweep sends them)."""
_POSTGRES_DOWN_S = 3.0


@dataclass
class Counters:
    """What the run did, for the figures."""

    events: int = 0
    charges: int = 0
    webhooks: int = 0
    stripe_events: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    postgres_restarts: int = 0
    stripe_faults: int = 0
    refused_while_down: int = 0
    purchases: dict[str, Purchase] = field(default_factory=dict)
    """PaymentIntent id → the purchase it paid."""


class Driver:
    """Sends the steps of a plan to a running :class:`Stack`."""

    def __init__(self, stack: Stack, on_step: Callable[[Counters], None]) -> None:
        self.stack = stack
        self.counters = Counters()
        self._on_step = on_step
        self._http = httpx.Client(base_url=stack.web_url, timeout=30.0)
        self._kling = Webhook(KLING_SECRET)
        self._redis_down_left = 0
        self._kills = 0
        self._event_ids = 0
        self._postgres: threading.Timer | None = None

    def close(self) -> None:
        self._http.close()

    def step(self, step: Charge | Delivery | Purchase | Fault) -> None:
        if isinstance(step, Charge):
            self._charge(step)
        elif isinstance(step, Fault):
            self._fault(step)
        elif isinstance(step, Purchase):
            self._purchase(step)
        else:
            self.deliver(step)
            if self._redis_down_left:
                self._redis_down_left -= 1
                if not self._redis_down_left:
                    self.stack.start_redis()
        self._on_step(self.counters)

    def _postgres_back(self) -> None:
        if self._postgres is not None:
            self._postgres.join()
            self._postgres = None

    def finish(self) -> None:
        """Bring back whatever a fault left down."""
        self._postgres_back()
        if self._redis_down_left:
            self._redis_down_left = 0
            self.stack.start_redis()

    # -- deliveries ----------------------------------------------------------------------

    def _charge(self, c: Charge) -> None:
        g = c.gen
        self._until_kept(
            lambda: client.charge(
                generation_id=g.gen_id,
                account_id=g.account,
                provider=g.provider,
                operation=g.operation,
                credits=g.credits,
                provider_job_id=g.job,
            )
        )
        self.counters.charges += 1

    def deliver(self, d: Delivery) -> None:
        if d.via == "webhook":
            self._post_kling(d)
        else:
            self._until_kept(
                lambda: client.report_result(
                    provider=d.gen.provider,
                    payload=d.payload(),
                    generation_id=d.gen.gen_id if d.by_id else None,
                )
            )
        self.counters.events += 1

    def _until_kept(self, send: Callable[[], object]) -> None:
        """``send`` until the ledger takes it (``LedgerUnavailable`` means: not kept yet)."""
        deadline = time.monotonic() + _KEEP_TIMEOUT_S
        while True:
            try:
                send()
                return
            except LedgerUnavailable:
                self.counters.refused_while_down += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the platform's own retry

    def _post(self, route: str, body: str, headers: Callable[[], dict[str, str]]) -> None:
        """POST a signed delivery until it is answered 200 (503 and dropped connections are
        retried as the provider retries; any other answer is a defect of the run)."""
        deadline = time.monotonic() + _KEEP_TIMEOUT_S
        while True:
            try:
                answer = self._http.post(f"/webhooks/{route}", content=body, headers=headers())
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code == 200:
                self.counters.webhooks += 1
                return
            if answer is not None and answer.status_code not in (502, 503, 504):
                raise RuntimeError(
                    f"/webhooks/{route} answered {answer.status_code}: {answer.text[:200]}"
                )
            self.counters.refused_while_down += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"/webhooks/{route} did not keep a delivery")
            time.sleep(0.2)  # the provider's own retry

    def _post_kling(self, d: Delivery) -> None:
        body = json.dumps(d.payload(), separators=(",", ":"))

        def headers() -> dict[str, str]:
            stamp = datetime.now(tz=UTC)
            return {
                "content-type": "application/json",
                "webhook-id": d.webhook_id,
                "webhook-timestamp": str(int(stamp.timestamp())),
                "webhook-signature": self._kling.sign(d.webhook_id, stamp, body),
            }

        self._post("kling", body, headers)

    def _post_stripe(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"))

        def headers() -> dict[str, str]:
            header = stripe.WebhookSignature.generate_signature_header(
                body, STRIPE_SECRET, int(time.time())
            )
            return {"content-type": "application/json", "stripe-signature": str(header)}

        self._post("stripe", body, headers)
        self.counters.stripe_events += 1
        self.counters.events += 1

    # -- payments ------------------------------------------------------------------------

    def _purchase(self, p: Purchase) -> None:
        """Buy a pack at the fake Stripe, post its events as ``p.deliver`` says, then refund
        or dispute it there and post what Stripe sends about that."""
        fake = self.stack.stripe
        session, intent, charge = fake.create_paid_checkout(
            p.account, PACK_PRICE, PACK_AMOUNT, customer=f"cus_{p.account}"
        )
        self.counters.purchases[intent["id"]] = p
        events = [
            self._envelope("checkout.session.completed", session),
            self._envelope("checkout.session.async_payment_succeeded", session),
            self._envelope("payment_intent.succeeded", intent),
        ]
        chosen = {
            "all": events,
            "dup": [*events, events[0], events[2], events[0]][::-1],
            "some": events[p.index % 3 : p.index % 3 + 1],
            "none": [],
        }[p.deliver]
        for event in chosen:
            self._post_stripe(event)
        if p.then == "refund":
            fake.refund(intent["id"])
            self._post_stripe(self._envelope("charge.refunded", fake.get(charge["id"])))
        elif p.then == "dispute":
            dispute = fake.dispute(charge["id"], "lost")
            self._post_stripe(self._envelope("charge.dispute.closed", dispute))

    # -- faults --------------------------------------------------------------------------

    def _fault(self, f: Fault) -> None:
        if f.kind == "kill":
            self.stack.kill_worker(self._kills)
            self._kills += 1
            self.counters.worker_kills += 1
        elif f.kind == "redis":
            if self._redis_down_left:
                return
            self.stack.restart_redis(f.hard)
            self._redis_down_left = _REDIS_DOWN_DELIVERIES
            self.counters.redis_restarts += 1
        elif f.kind == "postgres":
            self._postgres_back()
            self.stack.stop_postgres(f.hard)
            # back in 3 s, while the deliveries go on: they are refused, and retried
            self._postgres = threading.Timer(_POSTGRES_DOWN_S, self.stack.start_postgres)
            self._postgres.start()
            self.counters.postgres_restarts += 1
        else:
            how: dict[str, Any] = {"status": f.status} if f.status else {"hang_s": 3.0}
            if f.status == 429:
                how["retry_after"] = 1
            self.stack.stripe.fault("/v1/*", times=f.times, **how)
            self.counters.stripe_faults += 1

    def _envelope(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """The event Stripe sends about ``obj`` (https://docs.stripe.com/api/events/object):
        a snapshot of it, a fresh event id."""
        self._event_ids += 1
        return {
            "id": f"evt_chaos{self.stack.run}{self._event_ids:010d}",
            "object": "event",
            "type": kind,
            "created": int(obj.get("created") or time.time()),
            "livemode": False,
            "api_version": self.stack.stripe_api_version,
            "pending_webhooks": 1,
            "data": {"object": obj},
        }
