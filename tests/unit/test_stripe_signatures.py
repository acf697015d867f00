"""Stripe webhooks: only a delivery Stripe signed just now verifies; anything else is one of
the two refusals, never showing the secret.

Deliveries are signed with stripe-python's own helper (``generate_signature_header``, "useful for
signing payloads in unit tests"); bodies that are not UTF-8, which that helper cannot take, are
signed as Stripe's docs describe: HMAC-SHA256 of ``"{t}.{body}"`` with the whole secret.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import time
from hashlib import sha256
from typing import Any, TypeVar

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ConfigurationError
from providers.stripe import (
    PayloadUnreadable,
    PaymentEvent,
    SignatureInvalid,
    verify_webhook,
)

E = TypeVar("E", bound=PaymentEvent)
SECRET = "whsec_test_secret_Refundry0123456789"
NOW = 1_767_225_600
BODY = b'{"id":"evt_test_sig","object":"event","type":"charge.refunded","created":1767225600}'


def sign(body: bytes, secret: str = SECRET, t: int = NOW) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, t))


def sign_bytes(body: bytes, secret: str = SECRET, t: int = NOW) -> str:
    digest = hmac.new(secret.encode(), b"%d." % t + body, sha256).hexdigest()
    return f"t={t},v1={digest}"


def test_a_delivery_signed_by_stripe_just_now_verifies() -> None:
    assert verify_webhook(BODY, sign(BODY), SECRET, now=NOW + 10) == json.loads(BODY)


def test_the_real_clock_is_used_when_no_time_is_given() -> None:
    assert verify_webhook(BODY, sign(BODY, t=int(time.time())), SECRET)["id"] == "evt_test_sig"


def test_any_v1_signature_may_match_while_the_secret_is_rolled() -> None:
    old = sign(BODY, secret="whsec_the_old_one").split(",")[1]
    assert verify_webhook(BODY, f"{sign(BODY)},{old}", SECRET, now=NOW)["id"] == "evt_test_sig"
    assert verify_webhook(BODY, f"t={NOW},{old},{sign(BODY).split(',')[1]}", SECRET, now=NOW)


@pytest.mark.parametrize("age", [0, 1, 299, 300])
def test_a_delivery_up_to_the_tolerance_old_or_early_verifies(age: int) -> None:
    assert verify_webhook(BODY, sign(BODY, t=NOW - age), SECRET, now=NOW)
    assert verify_webhook(BODY, sign(BODY, t=NOW + age), SECRET, now=NOW)


FORGED = {
    "wrong secret": (BODY, sign(BODY, secret="whsec_someone_else")),
    "body changed by one byte": (BODY.replace(b"refunded", b"refundex"), sign(BODY)),
    "stale timestamp": (BODY, sign(BODY, t=NOW - 301)),
    "future timestamp": (BODY, sign(BODY, t=NOW + 301)),
    "far future timestamp": (BODY, sign(BODY, t=NOW + 10**9)),
    "garbage header": (BODY, "garbage"),
    "letters for numbers": (BODY, "t=abc,v1=zz"),
    "empty values": (BODY, "t=,v1="),
    "no timestamp": (BODY, "v1=" + "0" * 64),
    "no v1 signature": (BODY, f"t={NOW}"),
    "only a v0 signature": (BODY, sign(BODY).replace("v1=", "v0=")),
    "non-ASCII signature": (BODY, f"t={NOW},v1=é"),
    "huge timestamp": (BODY, "t=" + "9" * 5000 + ",v1=00"),
    "empty header": (BODY, ""),
    "missing header": (BODY, None),
    "unsigned non-UTF-8 body": (b"\xff\xfe{}", sign(b"{}")),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_a_forgery_is_refused_without_showing_the_secret(case: str) -> None:
    body, header = FORGED[case]
    with pytest.raises(SignatureInvalid) as caught:
        verify_webhook(body, header, SECRET, now=NOW)
    assert caught.value.permanent
    error: BaseException | None = caught.value
    while error is not None:
        assert SECRET not in f"{error} {error!r} {getattr(error, 'fields', '')}"
        error = error.__cause__


def test_timestamps_outside_the_window_say_which_side() -> None:
    with pytest.raises(SignatureInvalid, match="too long ago"):
        verify_webhook(BODY, sign(BODY, t=NOW - 301), SECRET, now=NOW)
    with pytest.raises(SignatureInvalid, match="future") as caught:
        verify_webhook(BODY, sign(BODY, t=NOW + 301), SECRET, now=NOW)
    assert caught.value.fields == {"timestamp": NOW + 301, "tolerance_s": 300}


UNREADABLE = {
    "not JSON": b"this is not json",
    "a JSON array": b'[{"id": "evt_1"}]',
    "a thin v2 event": b'{"id": "evt_1", "object": "v2.core.event", "type": "v1.x"}',
    "no type": b'{"id": "evt_1", "object": "event"}',
    "an empty id": b'{"id": "", "object": "event", "type": "charge.refunded"}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_a_genuine_signature_over_an_unreadable_body_is_unreadable(case: str) -> None:
    body = UNREADABLE[case]
    with pytest.raises(PayloadUnreadable) as caught:
        verify_webhook(body, sign(body), SECRET, now=NOW)
    assert caught.value.permanent
    assert SECRET not in str(caught.value)


def test_a_genuine_signature_over_bytes_that_are_not_utf8_is_unreadable() -> None:
    body = b'{"id": "evt_\xff"}'
    with pytest.raises(PayloadUnreadable, match="UTF-8"):
        verify_webhook(body, sign_bytes(body), SECRET, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_webhook(body, sign_bytes(body, t=NOW - 301), SECRET, now=NOW)


@pytest.mark.parametrize("secret", ["", None])
def test_a_missing_secret_or_tolerance_is_a_configuration_error(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        verify_webhook(BODY, sign(BODY), secret, now=NOW)
    with pytest.raises(ConfigurationError):
        verify_webhook(BODY, sign(BODY), SECRET, now=NOW, tolerance_s=0)


HEADERS = st.one_of(
    st.text(),
    st.builds(
        lambda t, sigs: ",".join([f"t={t}", *(f"v1={s}" for s in sigs)]),
        st.one_of(st.integers(), st.text(max_size=12)),
        st.lists(st.text(max_size=70), max_size=3),
    ),
)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), header=HEADERS)
def test_arbitrary_deliveries_raise_nothing_but_the_two_refusals(body: bytes, header: str) -> None:
    with contextlib.suppress(SignatureInvalid, PayloadUnreadable):
        verify_webhook(body, header, SECRET, now=NOW)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), skew=st.integers(-400, 400))
def test_genuinely_signed_arbitrary_bytes_verify_or_are_unreadable(body: bytes, skew: int) -> None:
    try:
        event = verify_webhook(body, sign_bytes(body, t=NOW + skew), SECRET, now=NOW)
    except PayloadUnreadable:
        assert abs(skew) <= 300
    except SignatureInvalid:
        assert abs(skew) > 300
    else:
        assert isinstance(event, dict) and abs(skew) <= 300
