"""Signature schemes without a server: deliveries signed by the official libraries (or by
kie.ai's documented HMAC) verify; any change to what is signed does not; a garbled header is
told apart from a forgery; a body that is not a JSON object is malformed, never guessed at."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from handlers.webhook_verification import (
    BodyMalformed,
    SignatureRefused,
    SignatureUnreadable,
    StandardWebhooks,
    SunoSignatures,
    json_object,
    split_secrets,
    stripe_refusal,
    verify_stripe,
    window,
)
from ledger.errors import ConfigurationError
from providers.stripe import SignatureInvalid

SECRET = "whsec_" + base64.b64encode(b"unit-test-standard-webhooks-key!").decode()
OLD = "whsec_" + base64.b64encode(b"the-previous-key-of-the-rotation").decode()
BODY = '{"task_id":"kt-1","task_status":"failed"}'


def _headers(body: str, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return {
        "webhook-id": "msg-1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg-1", stamp, body),
    }


def test_secrets_are_split_on_commas_for_a_rotation() -> None:
    assert split_secrets(" a, b,,c ,") == ("a", "b", "c")
    assert split_secrets("") == ()


def test_a_standard_webhook_verifies_with_either_secret_of_a_rotation() -> None:
    hooks = StandardWebhooks([SECRET, OLD], variable="KLING_WEBHOOK_SECRET")
    for secret in (SECRET, OLD):
        assert hooks.verify(BODY.encode(), _headers(BODY, secret)) == (
            "msg-1",
            {"task_id": "kt-1", "task_status": "failed"},
        )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"webhook-signature": ""}, "missing"),
        ({"webhook-timestamp": -400}, "stale"),
        ({"webhook-timestamp": +400}, "future"),
        ({"webhook-id": "msg-2"}, "forged"),
    ],
)
def test_a_standard_webhook_refusal_says_why(change: dict[str, object], why: str) -> None:
    change = {  # a time offset is taken from now, when the test runs
        name: str(int(time.time()) + value) if isinstance(value, int) else str(value)
        for name, value in change.items()
    }
    hooks = StandardWebhooks([SECRET], variable="X")
    with pytest.raises(SignatureRefused) as refused:
        hooks.verify(BODY.encode(), _headers(BODY) | change)
    assert refused.value.why == why


@pytest.mark.parametrize("garbled", ["v1", "v1,abc", "v1,a,b", "v1,%%%%"])
def test_a_garbled_signature_is_unreadable_not_forged(garbled: str) -> None:
    hooks = StandardWebhooks([SECRET], variable="X")
    headers = _headers(BODY) | {"webhook-signature": garbled}
    with pytest.raises((SignatureUnreadable, SignatureRefused)) as refused:
        hooks.verify(BODY.encode(), headers)
    if garbled != "v1,%%%%":  # base64 that decodes to nothing is merely a wrong signature
        assert isinstance(refused.value, SignatureUnreadable)


@settings(max_examples=200, deadline=None)
@given(position=st.integers(0, len(BODY) - 1), byte=st.integers(0, 255))
def test_no_change_to_a_signed_body_is_ever_accepted(position: int, byte: int) -> None:
    original = BODY.encode()
    if original[position] == byte:
        return
    tampered = original[:position] + bytes([byte]) + original[position + 1 :]
    hooks = StandardWebhooks([SECRET], variable="X")
    with pytest.raises((SignatureRefused, BodyMalformed)):
        hooks.verify(tampered, _headers(BODY))


def test_a_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        StandardWebhooks(["whsec_***"], variable="OPENAI_WEBHOOK_SECRET")
    assert caught.value.fields == {"variable": "OPENAI_WEBHOOK_SECRET"}
    assert "***" not in str(caught.value)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"[1]", b'"text"', b'{"a": NaN}', b"[" * 5000])
def test_only_a_json_object_is_a_body(body: bytes) -> None:
    with pytest.raises(BodyMalformed):
        json_object(body)


def test_stripe_deliveries_verify_with_any_rotated_secret_and_refusals_are_labelled() -> None:
    body = '{"id":"evt_1","object":"event","type":"customer.created","created":1,"data":{}}'
    header = str(stripe.WebhookSignature.generate_signature_header(body, "whsec_old", None))
    assert verify_stripe(body.encode(), header, ["whsec_new", "whsec_old"])["id"] == "evt_1"
    with pytest.raises(SignatureInvalid):
        verify_stripe(body.encode(), header, ["whsec_new"])
    assert stripe_refusal(header) == "forged"
    assert stripe_refusal(None) == "missing"
    assert stripe_refusal("t=abc,v1=00") == "unreadable"
    assert stripe_refusal(f"t={int(time.time()) - 400},v1=00") == "stale"
    assert stripe_refusal(f"t={int(time.time()) + 400},v1=00") == "future"


def _suno_headers(key: str, task: str, at: int) -> dict[str, str]:
    digest = hmac.new(key.encode(), f"{task}.{at}".encode(), hashlib.sha256).digest()
    return {
        "x-webhook-timestamp": str(at),
        "x-webhook-signature": base64.b64encode(digest).decode(),
    }


def test_a_suno_style_callback_proves_only_its_task_id() -> None:
    signatures = SunoSignatures(["kie-key"], variable="SUNO_WEBHOOK_SECRET")
    now = int(time.time())
    body = b'{"code":200,"data":{"callbackType":"complete","task_id":"t-1","data":[]}}'
    assert signatures.verify(body, _suno_headers("kie-key", "t-1", now)) == "t-1"
    other_body = b'{"code":500,"data":{"callbackType":"error","task_id":"t-1"}}'
    assert signatures.verify(other_body, _suno_headers("kie-key", "t-1", now)) == "t-1"
    with pytest.raises(SignatureRefused):
        signatures.verify(body, _suno_headers("kie-key", "t-2", now))
    with pytest.raises(SignatureUnreadable):
        signatures.verify(body, {"x-webhook-timestamp": str(now), "x-webhook-signature": "!!"})
    for unverifiable in (b'{"code":200}', b'{"data":{"task_id":"t-\xff"}}', b"[]"):
        with pytest.raises(SignatureRefused) as refused:  # no task id to check it against
            signatures.verify(unverifiable, _suno_headers("kie-key", "t-1", now))
        assert refused.value.why == "forged"


def test_kie_ais_documented_hmac_matches_the_research_vector() -> None:
    # base64(HMAC-SHA256(key, "task_fixture_0001.1760000300")), from the provider notes
    headers = _suno_headers("fixture-kie-hmac-key", "task_fixture_0001", 1760000300)
    assert headers["x-webhook-signature"] == "wnnx2/kDPlv/uR35CsojSDY1WHIBuo0GluaoDc1/AK4="


def test_the_window_is_three_hundred_seconds_both_ways() -> None:
    assert window(1_000, now=1_300) is None and window(1_000, now=700) is None
    assert window(1_000, now=1_301) == "stale"
    assert window(1_000, now=699) == "future"


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_this-is-not-base64!",
        "whsec_QUJD",  # 3 bytes
        "whsec_" + base64.b64encode(b"x" * 23).decode(),
        "whsec_",
        "whsec_" + base64.urlsafe_b64encode(b"\xfb" * 30).decode(),  # not standard base64
    ],
)
def test_a_secret_the_spec_would_not_issue_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StandardWebhooks([SECRET, secret], variable="KLING_WEBHOOK_SECRET")
    assert caught.value.fields["variable"] == "KLING_WEBHOOK_SECRET"
    assert secret.removeprefix("whsec_") not in str(caught.value) or secret == "whsec_"


def test_a_secret_of_24_bytes_unpadded_or_without_its_prefix_is_accepted() -> None:
    raw = base64.b64encode(b"y" * 25).decode()
    StandardWebhooks([raw.rstrip("="), "whsec_" + raw], variable="KLING_WEBHOOK_SECRET")
