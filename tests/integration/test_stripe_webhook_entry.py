"""``workers.client.report_stripe_webhook``: only an event Stripe signed with our secret, now,
is recorded; a forged, stale or future one mints nothing."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from providers.stripe import SignatureInvalid
from tests.support.fake_stripe import FakeStripe
from tests.support.stripe_events import bought as bought_pack
from tests.support.stripe_events import paid_events
from workers import client, runtime

SECRET = "whsec_refundry_entry_test_0123456789abcdef"


@pytest.fixture
def signed_env(
    fake: FakeStripe, refundry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    runtime.reset()


def _signed(body: str, secret: str = SECRET, at: float | None = None) -> str:
    t = int(time.time() if at is None else at)
    return str(stripe.WebhookSignature.generate_signature_header(body, secret, t))


def test_a_genuine_event_is_recorded(signed_env: None, fake: FakeStripe) -> None:
    session, intent, _ = bought_pack(fake, "acct_sig", "price_pack500", 1900)
    body = json.dumps(paid_events(session, intent)[0])
    inbox_id = client.report_stripe_webhook(payload=body.encode(), signature=_signed(body))
    item = runtime.ledger().inbox.get(inbox_id)
    assert item is not None and item.kind == "payment" and item.state == "pending"


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [("whsec_someone_else_entirely_0123456789", 0), (SECRET, 600), (SECRET, -600)],
    ids=["wrong-secret", "stale", "future"],
)
def test_a_forged_stale_or_future_event_is_refused_and_nothing_recorded(
    signed_env: None, fake: FakeStripe, secret: str, age_s: int
) -> None:
    session, intent, _ = bought_pack(fake, "acct_forged", "price_pack500", 1900)
    body = json.dumps(paid_events(session, intent)[0])
    header = _signed(body, secret, at=time.time() - age_s)
    with pytest.raises(SignatureInvalid) as caught:
        client.report_stripe_webhook(payload=body.encode(), signature=header)
    assert SECRET not in str(caught.value)
    assert runtime.ledger().inbox.counts() == {}


def test_a_garbled_header_is_refused_as_forged(signed_env: None) -> None:
    for header in ("garbage", "t=abc,v1=zz", "", None):
        with pytest.raises(SignatureInvalid):
            client.report_stripe_webhook(payload=b"{}", signature=header)
    assert runtime.ledger().inbox.counts() == {}
