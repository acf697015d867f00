"""Every door of the Python API (``workers.client``) refuses bad input with an error of
Refundry's own tree naming the argument, and stores nothing: no entry, no balance change,
no generation, no inbox row, no message. Credits on SQLite and PostgreSQL, which failed
differently before (SQLite kept 497.5 credits, PostgreSQL rounded 2.5 to 2); the rest on
one backend, since they are refused before the ledger is reached."""

from __future__ import annotations

import json
import math
import time
from collections import UserDict
from types import MappingProxyType
from typing import Any

import pytest
import redis
import stripe

from ledger import audit
from ledger.credits import MAX_CREDITS
from ledger.errors import (
    InvalidAmount,
    InvalidIdentifier,
    InvalidInput,
    InvalidPayload,
    LedgerError,
    Unclassifiable,
    UnknownOperation,
    UnknownProvider,
)
from providers.base import OPERATIONS
from providers.registry import PROVIDER_NAMES
from tests.support.backends import ONE_BACKEND
from workers import client, runtime
from workers.broker import queue_idle
from workers.validation import MAX_ID_LENGTH, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH

TOP_UP = 500


@pytest.fixture
def funded(refundry_env: dict[str, str]) -> dict[str, str]:
    client.grant(account_id="acct", credits=TOP_UP, idempotency_key="top-up", reason="test")
    return refundry_env


def _charge(**change: Any) -> int:
    args: dict[str, Any] = {
        "generation_id": "gen-1",
        "account_id": "acct",
        "provider": "kling",
        "operation": "video",
        "credits": 40,
        "provider_job_id": "job-1",
    }
    return client.charge(**(args | change))


def _nothing_stored(env: dict[str, str]) -> None:
    ledger = runtime.ledger()
    assert client.balance("acct") == TOP_UP
    assert ledger.generation("gen-1") is None
    assert ledger.inbox.counts() == {}
    assert audit(ledger.db) == []
    r = redis.Redis.from_url(env["REDIS_URL"])
    try:
        assert queue_idle(r, "results") and queue_idle(r, "payments")
    finally:
        r.close()


BAD_CREDITS = [2.5, 2.0, math.nan, True, "40", None, 0, -5, MAX_CREDITS + 1, 10**20]


def test_credits_that_are_not_a_whole_number_in_range_are_refused(
    funded: dict[str, str],
) -> None:
    for credits in BAD_CREDITS:
        with pytest.raises(InvalidAmount) as caught:
            _charge(credits=credits)
        assert isinstance(caught.value, LedgerError) and isinstance(caught.value, InvalidInput)
        assert caught.value.fields["field"] == "credits"
        with pytest.raises(InvalidAmount):
            client.grant(account_id="acct", credits=credits, idempotency_key="k2", reason="t")  # type: ignore[arg-type]
    _nothing_stored(funded)


def test_the_documented_maximum_is_accepted(refundry_env: dict[str, str]) -> None:
    assert client.grant(account_id="big", credits=MAX_CREDITS, idempotency_key="k", reason="t") == (
        MAX_CREDITS
    )
    assert _charge(account_id="big", credits=MAX_CREDITS) == 0
    assert audit(runtime.ledger().db) == []


BAD_IDS = ["", "   ", " gen", "gen\t", "gen\n1", "a\x00b", "a\x7fb", "x" * (MAX_ID_LENGTH + 1), 7]


@ONE_BACKEND
def test_charge_ids_that_are_empty_padded_too_long_or_hold_control_characters_are_refused(
    funded: dict[str, str],
) -> None:
    for field in ("generation_id", "account_id", "provider_job_id"):
        for value in BAD_IDS:
            with pytest.raises(InvalidIdentifier) as caught:
                _charge(**{field: value})
            assert caught.value.fields["field"] == field
            assert "\n" not in str(caught.value)  # repeated safely, on one line
    _nothing_stored(funded)


@ONE_BACKEND
def test_grant_keys_reasons_and_result_ids_follow_the_same_rules(funded: dict[str, str]) -> None:
    for value in BAD_IDS:
        with pytest.raises(InvalidIdentifier) as key:
            client.grant(account_id="acct", credits=1, idempotency_key=value, reason="t")  # type: ignore[arg-type]
        assert key.value.fields["field"] == "idempotency_key"
        with pytest.raises(InvalidIdentifier) as gen:
            client.report_result(provider="kling", payload={"id": "j"}, generation_id=value)  # type: ignore[arg-type]
        assert gen.value.fields["field"] == "generation_id"
        with pytest.raises(InvalidIdentifier):
            client.balance(value)  # type: ignore[arg-type]
    for reason in ("", "\x1b[2J", "r" * 1001, "\u200b\ufeff "):
        with pytest.raises(InvalidInput) as caught:
            client.grant(account_id="acct", credits=1, idempotency_key="k3", reason=reason)
        assert caught.value.fields["field"] == "reason"
    _nothing_stored(funded)


@ONE_BACKEND
def test_an_id_that_is_invisible_or_looks_like_another_is_refused(funded: dict[str, str]) -> None:
    """Ids of zero-width characters only, a bidirectional override inside, and ``café``
    decomposed (NFD) next to composed (NFC): refused, so that two ids that print the same are
    never charged as two generations. The composed form is accepted."""
    for value in ("\u200b", "\u200d", "\ufeff", "g\u202ex", "g\u2028x", "cafe\u0301"):
        for field in ("generation_id", "account_id", "provider_job_id"):
            with pytest.raises(InvalidIdentifier) as caught:
                _charge(**{field: value})
            assert caught.value.fields["field"] == field
        with pytest.raises(InvalidIdentifier):
            client.grant(account_id="acct", credits=1, idempotency_key=value, reason="t")
    _nothing_stored(funded)
    assert _charge(generation_id="caf\u00e9") == TOP_UP - 40


@ONE_BACKEND
def test_an_id_of_the_maximum_length_is_accepted(funded: dict[str, str]) -> None:
    longest = "g" * MAX_ID_LENGTH
    assert _charge(generation_id=longest) == TOP_UP - 40
    assert runtime.ledger().generation(longest) is not None


@ONE_BACKEND
def test_an_unknown_operation_is_refused_naming_the_valid_ones(funded: dict[str, str]) -> None:
    with pytest.raises(UnknownOperation) as caught:
        _charge(operation="vidoe")
    assert caught.value.fields["operation"] == "vidoe"
    assert caught.value.fields["valid"].split(", ") == list(OPERATIONS)
    with pytest.raises(UnknownOperation):
        client.report_result(provider="kling", payload={"id": "j"}, operation="vidoe")
    _nothing_stored(funded)


@ONE_BACKEND
def test_an_unknown_provider_is_refused_naming_the_known_ones(funded: dict[str, str]) -> None:
    with pytest.raises(UnknownProvider) as caught:
        _charge(provider="klingg")
    assert caught.value.fields["valid"].split(", ") == list(PROVIDER_NAMES)
    with pytest.raises(UnknownProvider) as payment:
        client.report_payment(provider="paypal", event={"id": "evt_1"})
    assert payment.value.fields["valid"] == "stripe"
    _nothing_stored(funded)


def _nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels - 1):
        node["a"] = {}
        node = node["a"]
    return root


NOT_STRICT_JSON = {
    "nan": {"status": math.nan},
    "infinity": {"status": "failed", "progress": math.inf},
    "nested-negative-infinity": {"outputs": [{"duration": -math.inf}]},
    "int-key": {1: "failed"},
    "set": {"status": {"failed"}},
    "bytes": {"status": b"failed"},
    "600-levels": _nested(600),
    "one-level-too-deep": _nested(MAX_PAYLOAD_DEPTH + 1),
    "over-1MiB": {"logs": "x" * MAX_PAYLOAD_BYTES},
    "list": ["not", "an", "object"],
}


@ONE_BACKEND
def test_a_result_payload_that_is_not_strict_json_within_the_caps_is_refused(
    funded: dict[str, str],
) -> None:
    for name, payload in NOT_STRICT_JSON.items():
        with pytest.raises(InvalidPayload) as caught:
            client.report_result(provider="kling", payload=payload)  # type: ignore[arg-type]
        assert isinstance(caught.value, Unclassifiable), name  # what it raised before
        assert caught.value.fields["field"] == "payload", name
        assert len(str(caught.value)) < 300, name  # never the payload itself
    _nothing_stored(funded)


@ONE_BACKEND
def test_a_payload_at_the_depth_cap_is_recorded_as_strict_json(
    refundry_env: dict[str, str],
) -> None:
    inbox_id = client.report_result(provider="kling", payload=_nested(MAX_PAYLOAD_DEPTH))
    item = runtime.ledger().inbox.get(inbox_id)
    assert item is not None and item.payload == _nested(MAX_PAYLOAD_DEPTH)


@ONE_BACKEND
def test_a_payment_event_that_is_not_strict_json_is_refused(funded: dict[str, str]) -> None:
    event = {"id": "evt_1", "type": "checkout.session.completed", "data": {"x": math.nan}}
    with pytest.raises(InvalidPayload) as caught:
        client.report_payment(provider="stripe", event=event)
    assert caught.value.fields["field"] == "event"
    _nothing_stored(funded)


class _Mapping(UserDict[str, Any]):
    """A mapping that is not a dict: json cannot encode it."""


PYTHON_ONLY = {
    "lone-surrogate-value": {"task_id": "t", "x": "\ud800"},
    "lone-surrogate-key": {"\udc80": 1},
    "5000-digit-int": {"task_id": "t", "n": 10**5000},
    "UserDict": _Mapping({"task_id": "t"}),
    "MappingProxyType": MappingProxyType({"task_id": "t"}),
    "nested-UserDict": {"a": _Mapping({"b": 1})},
}


@ONE_BACKEND
def test_values_python_holds_but_json_or_utf8_cannot_are_refused_not_crashed(
    funded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lone surrogates, integers too long to print, mappings that are not dicts, a webhook
    body that is not bytes: each door refuses them with its ``InvalidInput`` (never a
    ``UnicodeEncodeError``, ``ValueError`` or ``TypeError`` from deep inside)."""
    for name, payload in PYTHON_ONLY.items():
        with pytest.raises(InvalidPayload) as result:
            client.report_result(provider="kling", payload=payload)  # type: ignore[arg-type]
        assert result.value.fields["field"] == "payload", name
        with pytest.raises(InvalidPayload) as payment:
            client.report_payment(provider="stripe", event=payload)  # type: ignore[arg-type]
        assert payment.value.fields["field"] == "event", name
    for credits in (10**5000, -(10**5000)):
        with pytest.raises(InvalidAmount) as amount:
            _charge(credits=credits)
        assert "digits" in str(amount.value)
    for field in ("generation_id", "account_id", "provider_job_id"):
        with pytest.raises(InvalidIdentifier) as ident:
            _charge(**{field: "g\ud800x"})
        assert "surrogate" in str(ident.value) and ident.value.reason.isprintable()
    with pytest.raises(InvalidInput) as reason:
        client.grant(account_id="acct", credits=1, idempotency_key="k", reason="r\udc80")
    assert reason.value.fields["field"] == "reason"
    secret = "whsec_bad_input_test_0123456789abcdef"
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    runtime.reset()
    for body in (None, 5, [1], {"id": "evt"}):
        with pytest.raises(InvalidPayload) as raw:
            client.report_stripe_webhook(payload=body, signature="t=1,v1=ab")  # type: ignore[arg-type]
        assert raw.value.fields["field"] == "payload"
    for signature in (5, "t=1," + "v1=ab," * 2000):
        with pytest.raises(InvalidInput) as header:
            client.report_stripe_webhook(payload=b"{}", signature=signature)  # type: ignore[arg-type]
        assert header.value.fields["field"] == "signature"
    text = '{"id": "evt_s", "object": "event", "type": "customer.created", "x": "\\ud800"}'
    signed = stripe.WebhookSignature.generate_signature_header(text, secret, int(time.time()))
    with pytest.raises(InvalidPayload):
        client.report_stripe_webhook(payload=text.encode(), signature=signed)
    _nothing_stored(funded)


@ONE_BACKEND
def test_an_oversized_webhook_body_is_refused_before_its_signature_is_checked(
    funded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "whsec_bad_input_test_0123456789abcdef"
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    runtime.reset()
    body = json.dumps({"id": "evt_big", "padding": "x" * MAX_PAYLOAD_BYTES})
    header = stripe.WebhookSignature.generate_signature_header(body, secret, int(time.time()))
    with pytest.raises(InvalidPayload) as caught:
        client.report_stripe_webhook(payload=body.encode(), signature=header)
    assert caught.value.fields["bytes"] > MAX_PAYLOAD_BYTES
    _nothing_stored(funded)
